"""EC2 outside Auto Scaling, as AWS documents it: TerminateInstances shuts an instance down
(shutting-down, then terminated) and its group finds out from its health check; StopInstances
stops the host with its volume kept; StartInstances boots it again. Each state change sends an
"EC2 Instance State-change Notification" (the cloud's `ec2_event`). moto would drop a
terminated instance from its group at once and leave its host running."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moto.core.responses import ActionResult
from moto.ec2.responses import instances as ec2r

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto's TerminateInstances, StopInstances and StartInstances for the instances
    that have a host here (others keep moto's behaviour), and DescribeInstanceStatus for the
    scheduled events (moto lists none and knows no event.* filter)."""
    orig_status = ec2r.InstanceResponse.describe_instance_status

    def describe_instance_status(self) -> ActionResult:
        filters = self._filters_from_querystring()
        codes = filters.pop("event.code", None)
        if codes is None:
            return orig_status(self)
        if filters:  # no other filter is needed here: say so rather than ignore it
            raise NotImplementedError(f"DescribeInstanceStatus filters {sorted(filters)}")
        wanted = set(self._get_param("InstanceIds", []))
        out = []
        for iid, ev in list(cloud.scheduled.items()):
            if ev["Code"] not in codes or (wanted and iid not in wanted):
                continue
            try:
                inst = self.ec2_backend.get_instance(iid)
            except Exception:  # noqa: BLE001 - gone: not listed
                continue
            if inst._state.name != "running":  # without IncludeAllInstances: running ones only
                continue
            out.append({"InstanceId": iid, "AvailabilityZone": inst.placement,
                        "InstanceState": {"Code": 16, "Name": "running"}, "Events": [ev],
                        "InstanceStatus": {"Status": "ok"}, "SystemStatus": {"Status": "ok"}})
        return ActionResult({"InstanceStatuses": out})

    ec2r.InstanceResponse.describe_instance_status = describe_instance_status
    orig = {name: getattr(ec2r.InstanceResponse, name) for name in ("terminate_instances", "stop_instances", "start_instances")}

    def patched(name: str, key: str, current: tuple[int, str], act, with_force: bool = False):
        def handler(self) -> ActionResult:
            ids = self._get_param("InstanceIds", [])
            if not ids or not all(i in cloud.hosts.hosts for i in ids):
                return orig[name](self)
            self.error_on_dryrun()
            out = []
            force = with_force and str(self._get_param("Force", False)).lower() == "true"
            for iid in ids:
                inst = self.ec2_backend.get_instance(iid)  # InvalidInstanceID.NotFound as AWS
                previous = {"Code": inst._state.code, "Name": inst._state.name}
                if with_force:
                    act(iid, force)
                else:
                    act(iid)
                out.append({"InstanceId": iid, "CurrentState": {"Code": current[0], "Name": current[1]},
                            "PreviousState": previous})
            return ActionResult({key: out})

        return handler

    ec2r.InstanceResponse.terminate_instances = patched(
        "terminate_instances", "TerminatingInstances", (32, "shutting-down"),
        lambda iid: cloud.terminate_out_of_band(iid, cause="TerminateInstances"))
    ec2r.InstanceResponse.stop_instances = patched(
        "stop_instances", "StoppingInstances", (64, "stopping"), cloud.stop_out_of_band, with_force=True)
    ec2r.InstanceResponse.start_instances = patched(
        "start_instances", "StartingInstances", (0, "pending"), cloud.start_out_of_band)
