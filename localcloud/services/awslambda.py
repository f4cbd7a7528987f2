"""Lambda's API for the functions the local cloud runs itself (lambdas.py): their configuration
and resource policy. moto's Lambda keeps answering for functions it holds (`make deploy-code`'s
scenario); a name the local cloud runs is answered from its own function:
- GetFunctionConfiguration: name, ARN, role, timeout, memory, the environment variables the
  stack set (not the runtime's reserved AWS_* ones, which Lambda sets itself and never lists);
- GetPolicy: one statement per permission, `{"Service": "events.amazonaws.com"}` allowed
  `lambda:InvokeFunction` on the function with `ArnLike` `AWS:SourceArn` the rule, as AddPermission
  writes it; none: ResourceNotFoundException ("The resource you requested does not exist.");
- UpdateFunctionConfiguration (Environment, Timeout, MemorySize, Role): "When you update a function,
  Lambda provisions an instance of the function ... you can still invoke it. The
  LastUpdateStatus ... fields ... indicate when the update is complete and the function is
  processing events with the new configuration" (API reference): answered InProgress, then
  Successful; its events from then on run in environments started with the new variables
  (lambdas.Function.reconfigure). A reserved key (the developer guide's defined runtime
  variables) is InvalidParameterValueException, as Lambda refuses it; a Role Lambda cannot
  assume (here: any but the functions' roles) is InvalidParameterValueException "The role
  defined for the function cannot be assumed by Lambda." (the API reference's error); with
  another role, the function's calls are that role's (its environments restarted);
- AddPermission (a StatementId taken: ResourceConflictException) and RemovePermission (an
  unknown one: ResourceNotFoundException), which EventBridge's delivery follows (lambdas.py)."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from moto.awslambda.responses import LambdaResponse

if TYPE_CHECKING:
    from ..cloud import Cloud

def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any], str]:
    return status, {"status": status, "x-amzn-errortype": kind}, json.dumps({"Type": "User", "Message": message})


# Lambda's defined runtime environment variables that a function's configuration cannot set.
RESERVED = {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
            "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}


def install(cloud: Cloud) -> None:
    """Patches moto's Lambda to answer for `cloud`'s own functions."""
    originals = {name: getattr(LambdaResponse, name) for name in
                 ("get_function_configuration", "update_function_configuration", "get_policy", "add_permission",
                  "remove_permission")}

    def ours(path: str, back: int) -> str | None:
        name = unquote(path.split("?")[0].rstrip("/").split("/")[back]).rsplit(":function:", 1)[-1]
        return name if name in cloud.lambdas.functions else None

    def configuration(name: str, status: str) -> str:
        fn = cloud.lambdas.functions[name]
        return json.dumps({
            "FunctionName": name, "FunctionArn": cloud.lambdas.function_arn(name), "Runtime": "provided.al2023",
            "Role": fn.role, "Handler": "bootstrap", "Timeout": int(fn.timeout), "MemorySize": fn.memory,
            "Environment": {"Variables": {k: v for k, v in fn.env.items() if not k.startswith("AWS_")}},
            "State": "Active", "LastUpdateStatus": status, "PackageType": "Zip", "Architectures": ["x86_64"]})

    def get_function_configuration(self: LambdaResponse) -> Any:
        name = ours(self.path, -2)
        if name is None:
            return originals["get_function_configuration"](self)
        return 200, {}, configuration(name, "Successful")

    def update_function_configuration(self: LambdaResponse) -> Any:
        name = ours(self.path, -2)
        if name is None:
            return originals["update_function_configuration"](self)
        body = json.loads(self.body or "{}")
        unmodelled = sorted(set(body) - {"Environment", "Timeout", "MemorySize", "Role", "RevisionId"})
        if unmodelled:
            return _error(400, "InvalidParameterValueException", f"Not modelled here: {', '.join(unmodelled)}.")
        fn = cloud.lambdas.functions[name]
        key = None
        if "Role" in body:
            # A role Lambda can assume: here, the functions' roles (the template's, trusting
            # lambda.amazonaws.com); its calls are then that role's.
            key = cloud.lambdas.role_key(str(body["Role"]))
            if key is None:
                return _error(400, "InvalidParameterValueException",
                              "The role defined for the function cannot be assumed by Lambda.")
        if "Environment" in body:
            variables = {str(k): str(v) for k, v in (body["Environment"].get("Variables") or {}).items()}
            reserved = sorted(set(variables) & RESERVED)
            if reserved:
                return _error(400, "InvalidParameterValueException",
                              "Lambda was unable to configure your environment variables because the environment "
                              "variables you have provided contains reserved keys that are currently not supported "
                              f"for modification. Reserved keys used in this request: {','.join(reserved)}")
            fn.reconfigure(variables)
        if key is not None:
            fn.run_as(str(body["Role"]), key)
        fn.timeout = float(body.get("Timeout", fn.timeout))
        fn.memory = int(body.get("MemorySize", fn.memory))
        return 200, {}, configuration(name, "InProgress")

    def get_policy(self: LambdaResponse) -> Any:
        name = ours(self.path, -2)
        if name is None:
            return originals["get_policy"](self)
        grants = cloud.lambdas.permissions.get(name) or {}
        if not grants:
            return _error(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        arn = cloud.lambdas.function_arn(name)
        policy = {"Version": "2012-10-17", "Id": "default", "Statement": [
            {"Sid": sid, "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": "lambda:InvokeFunction", "Resource": arn, "Condition": {"ArnLike": {"AWS:SourceArn": source}}}
            for sid, source in grants.items()]}
        return 200, {}, json.dumps({"Policy": json.dumps(policy), "RevisionId": str(uuid.uuid4())})

    def add_permission(self: LambdaResponse) -> Any:
        name = ours(self.path, -2)
        if name is None:
            return originals["add_permission"](self)
        body = json.loads(self.body or "{}")
        sid = str(body.get("StatementId", ""))
        if sid in (cloud.lambdas.permissions.get(name) or {}):
            return _error(409, "ResourceConflictException", f"The statement id ({sid}) provided already exists. "
                                                           "Please provide a new statement id, or remove the existing statement.")
        if body.get("Principal") != "events.amazonaws.com" or body.get("Action") != "lambda:InvokeFunction":
            return _error(400, "InvalidParameterValueException", "Only EventBridge's invoke permission is modelled here.")
        cloud.lambdas.add_permission(name, sid, str(body.get("SourceArn", "")))
        statement = {"Sid": sid, "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                     "Action": "lambda:InvokeFunction", "Resource": cloud.lambdas.function_arn(name),
                     "Condition": {"ArnLike": {"AWS:SourceArn": body.get("SourceArn")}}}
        return 201, {"status": 201}, json.dumps({"Statement": json.dumps(statement)})

    def remove_permission(self: LambdaResponse) -> Any:
        name = ours(self.path, -3)
        if name is None:
            return originals["remove_permission"](self)
        sid = unquote(self.path.split("?")[0].rstrip("/").split("/")[-1])
        if sid not in (cloud.lambdas.permissions.get(name) or {}):
            return _error(404, "ResourceNotFoundException", f"No policy is associated with the given resource: {sid}")
        cloud.lambdas.remove_permission(name, sid)
        return 204, {"status": 204}, ""

    for name, fn in (("get_function_configuration", get_function_configuration),
                     ("update_function_configuration", update_function_configuration), ("get_policy", get_policy),
                     ("add_permission", add_permission), ("remove_permission", remove_permission)):
        setattr(LambdaResponse, name, fn)
