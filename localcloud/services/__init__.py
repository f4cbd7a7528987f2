"""moto's services made to behave as AWS documents them, one module per service. Each
`install(cloud)` patches moto once, at startup, with functions that act on that cloud."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import autoscaling, awslambda, cloudformation, ec2, ecs, events, iam, route53, ssm

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    for service in (autoscaling, ec2, ssm, route53, ecs, events, cloudformation, awslambda, iam):
        service.install(cloud)
