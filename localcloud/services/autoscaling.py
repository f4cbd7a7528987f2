"""Auto Scaling as AWS documents it: launches and terminations through the lifecycle hooks
(Pending:Wait, Terminating:Wait), CompleteLifecycleAction and RecordLifecycleActionHeartbeat
against the cloud's actions; scale-in through the terminate hook."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from moto.autoscaling import models as asm
from moto.autoscaling import responses as asr
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.exceptions import ValidationError as AsValidationError
from moto.core.responses import ActionResult, EmptyResult

from .. import refresh
from ..cloud import AwsError

if TYPE_CHECKING:
    from ..cloud import Cloud


def launches_spot(group, new, decided: set[str]) -> bool:
    """Whether a mixed group launches `new` as Spot. AWS: OnDemandBaseCapacity is "the minimum
    amount of the Auto Scaling group's capacity that must be fulfilled by On-Demand Instances.
    This base portion is launched first"; OnDemandPercentageAboveBaseCapacity "controls the
    percentages of On-Demand Instances and Spot Instances for your additional capacity beyond
    OnDemandBaseCapacity ... Default: 100". moto launches every instance On-Demand. `decided`: the
    group's instances whose capacity is known (launched before, or earlier in this batch)."""
    dist = (group.mixed_instances_policy or {}).get("InstancesDistribution") or {}
    if not group.mixed_instances_policy:
        return False
    base = int(dist.get("OnDemandBaseCapacity", 0))
    pct = int(dist.get("OnDemandPercentageAboveBaseCapacity", 100))
    others = [st for st in group.instance_states
              if st.instance.id in decided and not st.lifecycle_state.startswith("Terminating")]
    on_demand = sum(st.instance.lifecycle != "spot" for st in others)
    if on_demand < base:
        return False
    above, on_demand_above = len(others) - base, on_demand - base
    # On-Demand while the share above the base stays within the percentage.
    return (on_demand_above + 1) * 100 > pct * (above + 1)


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    _orig_replace = asm.FakeAutoScalingGroup.replace_autoscaling_group_instances

    def _replace_instances(self, count_needed, propagated_tags):
        before = {s.instance.id for s in self.instance_states}
        subnets = [x for x in (self.vpc_zone_identifier or "").split(",") if x]
        if len(subnets) < 2:
            _orig_replace(self, count_needed, propagated_tags)
        else:
            # moto launches every instance into the first subnet. AWS (balanced best effort, the
            # default): "Auto Scaling maintains an equal number of instances across enabled
            # Availability Zones. If launch attempts fail in an Availability Zone, Auto Scaling
            # attempts to launch instances in another healthy Availability Zone."
            usable = [x for x in subnets if cloud.subnet_zone(x) not in cloud.lost_zones]
            try:
                for _ in range(count_needed if usable else 0):
                    live = [st.instance.subnet_id for st in self.instance_states
                            if not st.lifecycle_state.startswith("Terminating")]
                    self.vpc_zone_identifier = min(usable, key=live.count)
                    _orig_replace(self, 1, propagated_tags)
            finally:
                self.vpc_zone_identifier = ",".join(subnets)
        decided = set(before)
        for s in self.instance_states:
            if s.instance.id not in decided:
                if launches_spot(self, s, decided):
                    s.instance.lifecycle = "spot"  # DescribeInstances' InstanceLifecycle
                decided.add(s.instance.id)
                cloud.on_launched(self, s)

    def _active_instances(self):
        # Instances waiting in a launch hook count towards capacity; leaving ones do not.
        return [s for s in self.instance_states if s.lifecycle_state in ("Pending", "Pending:Wait", "Pending:Proceed", "InService")]

    def _set_desired_capacity(self, new_capacity):
        self.desired_capacity = self.min_size if new_capacity is None else new_capacity
        active = self.active_instances()
        delta = (self.desired_capacity or 0) - len(active)
        if delta > 0:
            self.replace_autoscaling_group_instances(delta, self.get_propagated_tags())
        elif delta < 0:
            # Scale-in goes through the terminate hook; the newest instances go first.
            victims = [s for s in active if not s.protected_from_scale_in][delta:]
            for s in victims:
                cloud.begin_terminate(self, s)

    def _terminate_instance(self, instance_id, should_decrement):
        group, state = cloud._find_state(instance_id)
        if state is None:
            raise AsValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        original = group.desired_capacity
        if not state.lifecycle_state.startswith("Terminating"):
            if should_decrement:
                group.desired_capacity = original - 1
            cloud.begin_terminate(group, state)
            if not should_decrement:
                group.set_desired_capacity(group.desired_capacity)  # launches the replacement
        return asm.TerminateInstanceActivity(state.instance, original)

    asm.FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace_instances
    asm.FakeAutoScalingGroup.active_instances = _active_instances
    asm.FakeAutoScalingGroup.set_desired_capacity = _set_desired_capacity
    asm.AutoScalingBackend.terminate_instance = _terminate_instance

    def _complete_lifecycle_action(self):
        params = {k: self._get_param(k) for k in ("AutoScalingGroupName", "LifecycleHookName", "LifecycleActionToken",
                                                  "InstanceId", "LifecycleActionResult")}
        result = params["LifecycleActionResult"]
        if result not in ("CONTINUE", "ABANDON"):
            raise AsValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
        a = cloud.action_for(params)
        cloud._end_action(a, result, "complete")
        return EmptyResult()

    def _record_heartbeat(self):
        params = {k: self._get_param(k) for k in ("AutoScalingGroupName", "LifecycleHookName", "LifecycleActionToken", "InstanceId")}
        a = cloud.action_for(params)
        now = time.time()
        a.heartbeats.append(now)
        a.deadline = now + a.heartbeat_timeout
        cloud.record("heartbeat", instance=a.instance_id, release_at=round(a.deadline - cloud.t0, 3))
        return EmptyResult()

    def _start_instance_refresh(self):
        params = self._get_params()
        prefs = params.get("Preferences") or {}
        r = refresh.start(cloud, params.get("AutoScalingGroupName"), prefs)
        return ActionResult({"InstanceRefreshId": r.id})

    def _describe_instance_refreshes(self):
        group = self._get_param("AutoScalingGroupName")
        ids = self._get_param("InstanceRefreshIds", [])
        found = [r.public() for r in reversed(cloud.refreshes) if r.group == group and (not ids or r.id in ids)]
        return ActionResult({"InstanceRefreshes": found})

    def _delete_group(self):
        # AWS: "If the group has instances or scaling activities in progress, you must specify
        # the option to force the deletion in order for it to succeed" (DeleteAutoScalingGroup);
        # moto deletes it at once and leaves its instances running. Emptying it first (min and
        # desired 0) is what takes its instances out through the terminate hook.
        name = self._get_param("AutoScalingGroupName")
        if self._get_param("ForceDelete") in (True, "true"):
            raise AsValidationError("ForceDelete is not imitated by the local cloud")
        g = self.autoscaling_backend.autoscaling_groups.get(name)
        if g is not None and g.instance_states:
            raise AutoscalingClientError("ResourceInUse", "You cannot delete an AutoScalingGroup while there are "
                                         "instances or pending Spot instance request(s) still in the group.")
        self.autoscaling_backend.delete_auto_scaling_group(name)
        cloud.record("group-deleted", group=name)
        return EmptyResult()

    _orig_describe_instances = asr.AutoScalingResponse.describe_auto_scaling_instances

    def _describe_instances(self):
        # Fault: Auto Scaling's API down for a while ("ServiceUnavailable: The request has failed
        # due to a temporary failure of the server", the common errors), one call per count.
        if cloud.take_fault("autoscaling_unavailable"):
            raise AwsError("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        return _orig_describe_instances(self)

    asr.AutoScalingResponse.describe_auto_scaling_instances = _describe_instances
    asr.AutoScalingResponse.delete_auto_scaling_group = _delete_group
    asr.AutoScalingResponse.start_instance_refresh = _start_instance_refresh
    asr.AutoScalingResponse.describe_instance_refreshes = _describe_instance_refreshes
    asr.AutoScalingResponse.complete_lifecycle_action = _complete_lifecycle_action
    asr.AutoScalingResponse.record_lifecycle_action_heartbeat = _record_heartbeat
