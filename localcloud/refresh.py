"""Auto Scaling instance refresh, as AWS documents it: what CloudFormation starts when a stack
update changes a group's launch template and the group's UpdatePolicy is
AutoScalingInstanceRefresh.

- The instances not on the group's launch template version are replaced, the matching ones
  skipped with SkipMatching ("skips replacing instances that already have your desired
  configuration").
- MinHealthyPercentage 100 is "launch before terminating": a replacement is launched first and
  "waits for it to be fully ready" (InService: its launch hook completed) and for the warmup,
  and only then is an old instance terminated (through its terminate hook); MaxHealthyPercentage
  bounds how many are replaced at once (the group's capacity may reach desired × Max / 100).
  Below 100, old instances are terminated first, as many as the minimum allows, and the group
  replaces them.
- One refresh per group at a time: another StartInstanceRefresh answers
  InstanceRefreshInProgress ("An instance refresh is already in progress").
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.exceptions import ValidationError as AsValidationError

from .cloud import LOCK, Cloud


class InstanceRefreshInProgress(AutoscalingClientError):
    code = 400

    def __init__(self, group: str):
        super().__init__("InstanceRefreshInProgress", f"An Instance Refresh is already in progress and blocks the execution "
                                                      f"of this Instance Refresh for {group}.")


@dataclass
class Refresh:
    id: str
    group: str
    min_healthy: int
    max_healthy: int
    warmup: float
    skip_matching: bool
    status: str = "Pending"
    reason: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    to_replace: list[str] = field(default_factory=list)
    replaced: int = 0

    def public(self) -> dict[str, Any]:
        done = 100 if self.status == "Successful" else int(100 * self.replaced / max(1, len(self.to_replace)))
        out = {"InstanceRefreshId": self.id, "AutoScalingGroupName": self.group, "Status": self.status,
               "StartTime": datetime.fromtimestamp(self.started, UTC), "PercentageComplete": done,
               "InstancesToUpdate": len(self.to_replace) - self.replaced,
               "Preferences": {"MinHealthyPercentage": self.min_healthy, "MaxHealthyPercentage": self.max_healthy,
                               "InstanceWarmup": int(self.warmup), "SkipMatching": self.skip_matching}}
        if self.reason:
            out["StatusReason"] = self.reason
        if self.ended:
            out["EndTime"] = datetime.fromtimestamp(self.ended, UTC)
        return out


def start(cloud: Cloud, group_name: str, prefs: dict[str, Any]) -> Refresh:
    """StartInstanceRefresh (under the cloud's lock)."""
    group = cloud.backend().autoscaling_groups.get(group_name)
    if group is None:
        raise AsValidationError(f"AutoScalingGroup name not found - {group_name}")
    if any(r.group == group_name and r.status in ("Pending", "InProgress") for r in cloud.refreshes):
        raise InstanceRefreshInProgress(group_name)
    lo, hi = int(prefs.get("MinHealthyPercentage", 90)), int(prefs.get("MaxHealthyPercentage", 100))
    if not (0 <= lo <= 100 <= hi <= 200) or hi - lo > 100 or (lo == 100 and hi == 100):
        raise AsValidationError("MinHealthyPercentage and MaxHealthyPercentage must be 0-100 and 100-200, "
                                "at most 100 apart, and not both 100")
    r = Refresh(id=str(uuid.uuid4()), group=group_name, min_healthy=lo, max_healthy=hi,
                warmup=float(prefs.get("InstanceWarmup", 0)), skip_matching=str(prefs.get("SkipMatching", "false")).lower() == "true")
    target = cloud.group_version(group)
    r.to_replace = [s.instance.id for s in group.instance_states
                    if s.lifecycle_state == "InService"
                    and not (r.skip_matching and cloud.launched_version.get(s.instance.id) == target)]
    cloud.refreshes.append(r)
    cloud.record("instance-refresh", group=group_name, id=r.id, to_replace=r.to_replace, min_healthy=lo, max_healthy=hi)
    threading.Thread(target=_run, args=(cloud, r), daemon=True).start()
    return r


def _wait(cloud: Cloud, cond, timeout: float = 900) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        with LOCK:
            if cond():
                return True
        time.sleep(0.2)
    return False


def _run(cloud: Cloud, r: Refresh) -> None:
    r.status = "InProgress"
    pending = list(r.to_replace)
    try:
        while pending:
            with LOCK:
                group = cloud.backend().autoscaling_groups[r.group]
                desired = group.desired_capacity or 0
                live = {s.instance.id for s in group.instance_states}
                pending = [i for i in pending if i in live]
                if not pending:
                    break
                if r.min_healthy == 100:
                    # Launch before terminating: room above the desired capacity, at least one.
                    n = min(len(pending), max(1, math.floor(desired * r.max_healthy / 100) - desired))
                    before = live
                    group.replace_autoscaling_group_instances(n, group.get_propagated_tags())
                    new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
                else:
                    n = min(len(pending), max(1, desired - math.ceil(desired * r.min_healthy / 100)))
                    new = []
            if new:
                if not _wait(cloud, lambda new=new: all(cloud.lifecycle_state(i) in ("InService", None) for i in new)):
                    raise RuntimeError("replacements not InService in 900 s")
                if any(cloud.lifecycle_state(i) is None for i in new):
                    raise RuntimeError("a replacement instance failed to launch")
                time.sleep(r.warmup)
            victims = pending[:n]
            with LOCK:
                group = cloud.backend().autoscaling_groups[r.group]
                for s in [s for s in group.instance_states if s.instance.id in victims]:
                    cloud.begin_terminate(group, s)
                if r.min_healthy < 100:
                    group.set_desired_capacity(group.desired_capacity)  # the group launches the replacements
            if not _wait(cloud, lambda victims=victims: all(cloud.lifecycle_state(i) is None for i in victims)):
                raise RuntimeError("old instances not terminated in 900 s")
            # The next batch only once the group is back at its desired capacity, all InService.
            if not _wait(cloud, lambda desired=desired: cloud.in_service_count(r.group) >= desired):
                raise RuntimeError("the group did not come back to its desired capacity in 900 s")
            r.replaced += len(victims)
            pending = pending[n:]
        r.status = "Successful"
    except Exception as e:  # noqa: BLE001 - the refresh fails with its reason, as AWS reports one
        r.status, r.reason = "Failed", str(e)
    r.ended = time.time()
    cloud.record("instance-refresh-ended", group=r.group, id=r.id, status=r.status, reason=r.reason, replaced=r.replaced)
