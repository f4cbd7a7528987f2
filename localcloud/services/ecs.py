"""ECS as AWS documents it: container-instance state changes become EventBridge events."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from moto.ecs import models as ecsm

from ..cloud import ACCOUNT, iso, utc

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    # ECS: container-instance state changes become EventBridge events, as ECS emits them.
    def _ecs_event(ci, cluster_name: str, region: str) -> dict[str, Any]:
        now = time.time()
        ci.version = getattr(ci, "version", 1) + 1
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "ECS Container Instance State Change",
            "source": "aws.ecs", "account": ACCOUNT, "time": utc(now).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [ci.container_instance_arn],
            "detail": {
                "agentConnected": bool(ci.agent_connected), "attributes": [],
                "clusterArn": f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{cluster_name}",
                "containerInstanceArn": ci.container_instance_arn, "ec2InstanceId": ci.ec2_instance_id,
                "registeredResources": [], "remainingResources": [], "status": ci.status, "version": ci.version,
                "versionInfo": {}, "updatedAt": iso(now), "accountType": "ec2_instance",
            },
        }

    def _emit(event: dict[str, Any]) -> None:
        cloud.deliver(event, instance=(event.get("detail") or {}).get("ec2InstanceId"))

    _orig_register_ci = ecsm.EC2ContainerServiceBackend.register_container_instance
    _orig_update_ci = ecsm.EC2ContainerServiceBackend.update_container_instances_state
    _orig_deregister_ci = ecsm.EC2ContainerServiceBackend.deregister_container_instance

    def _register_ci(self, cluster_str, ec2_instance_id):
        ci = _orig_register_ci(self, cluster_str, ec2_instance_id)
        _emit(_ecs_event(ci, cluster_str.split("/")[-1], self.region_name))
        return ci

    def _update_ci(self, cluster_str, ids, status):
        cis, failures = _orig_update_ci(self, cluster_str, ids, status)
        for ci in cis:
            _emit(_ecs_event(ci, cluster_str.split("/")[-1], self.region_name))
        return cis, failures

    def _deregister_ci(self, cluster_str, container_instance_str, force):
        ci = _orig_deregister_ci(self, cluster_str, container_instance_str, force)
        ci.status, ci.agent_connected = "INACTIVE", False
        _emit(_ecs_event(ci, cluster_str.split("/")[-1], self.region_name))
        return ci

    ecsm.EC2ContainerServiceBackend.register_container_instance = _register_ci
    ecsm.EC2ContainerServiceBackend.update_container_instances_state = _update_ci
    ecsm.EC2ContainerServiceBackend.deregister_container_instance = _deregister_ci
