"""CloudFormation's view of a cluster's stack: the local cloud creates the stack's resources
through the services' APIs, not through CloudFormation, so DescribeStacks and
DescribeStackResources answer for it from what it registered (/_localcloud/stack): every
template parameter with the stack's value, the outputs it can render, and the physical ids of
the resources it created. Any other stack is moto's (a name it does not know: ValidationError
"Stack with id … does not exist", as AWS says it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto's CloudFormation to answer for the stacks `cloud` registered."""
    describe_stacks = CloudFormationResponse.describe_stacks
    describe_stack_resources = CloudFormationResponse.describe_stack_resources

    def registered(name: str | None) -> dict[str, Any] | None:
        return next((s for s in cloud.stacks.values() if name in (s["StackName"], s["StackId"])), None)

    def _describe_stacks(self: CloudFormationResponse) -> ActionResult:
        stack = registered(self._get_param("StackName"))
        if stack is None:
            return describe_stacks(self)
        # Tags as a mapping: moto's serializer turns it into the list (none here).
        return ActionResult({"Stacks": [{**{k: v for k, v in stack.items() if k != "Resources"}, "Tags": {}}]})

    def _describe_stack_resources(self: CloudFormationResponse) -> ActionResult:
        stack = registered(self._get_param("StackName"))
        if stack is None:
            return describe_stack_resources(self)
        logical = self._get_param("LogicalResourceId")
        return ActionResult({"StackResources": [
            {"StackName": stack["StackName"], "StackId": stack["StackId"], "Timestamp": stack["CreationTime"],
             "ResourceStatus": "CREATE_COMPLETE", **r}
            for r in stack["Resources"] if logical in (None, r["LogicalResourceId"])]})

    CloudFormationResponse.describe_stacks = _describe_stacks  # type: ignore[method-assign]
    CloudFormationResponse.describe_stack_resources = _describe_stack_resources  # type: ignore[method-assign]
