"""SSM Run Command as AWS documents it: the agents' ping status, SendCommand run in the hosts,
Get/ListCommandInvocations with AWS's statuses and output limits."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ssm import responses as ssmr

from ..cloud import ACCOUNT, AwsError, Invocation, iso, utc

if TYPE_CHECKING:
    from ..cloud import Cloud


def install(cloud: Cloud) -> None:
    """Patches moto to behave as documented above, acting on `cloud` (once per process)."""
    def _ids_filter(self) -> list[str] | None:
        for f in self._get_param("Filters") or []:
            if f.get("Key") in ("InstanceIds", "tag:aws:autoscaling:groupName") and f.get("Key") == "InstanceIds":
                return list(f.get("Values") or [])
        for f in self._get_param("InstanceInformationFilterList") or []:
            if f.get("key") == "InstanceIds":
                return list(f.get("valueSet") or [])
        return None

    def _describe_instance_information(self):
        ids = _ids_filter(self)
        max_results = int(self._get_param("MaxResults") or 10)
        start = int(self._get_param("NextToken") or 0)
        rows = []
        for iid in sorted(ids if ids is not None else cloud.hosts.hosts):
            status = cloud.ping_status(iid)
            h = cloud.hosts.hosts.get(iid)
            if status is None or h is None:
                continue
            rows.append({
                "InstanceId": iid, "PingStatus": status, "LastPingDateTime": utc(), "AgentVersion": "3.3.0.0",
                "IsLatestVersion": True, "PlatformType": "Linux", "PlatformName": "Amazon Linux",
                "PlatformVersion": "2023", "ResourceType": "EC2Instance", "IPAddress": h.ip, "ComputerName": h.hostname,
            })
        page = rows[start:start + max_results]
        result: dict[str, Any] = {"InstanceInformationList": page}
        if start + max_results < len(rows):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    def _send_command(self):
        if cloud.take_fault("ssm_throttle"):
            raise AwsError("ThrottlingException", "Rate exceeded")
        doc = self._get_param("DocumentName")
        if doc != "AWS-RunShellScript":
            raise AwsError("InvalidDocument", f"Document {doc} is not supported by the local cloud")
        ids = self._get_param("InstanceIds") or []
        if not ids or len(ids) > 50:
            raise AwsError("ValidationException", "InstanceIds must hold 1 to 50 ids")
        bad = [i for i in ids if cloud.ping_status(i) != "Online"]
        if bad:
            raise AwsError("InvalidInstanceId", f"Instances [{bad}] not in a valid state for account {ACCOUNT}")
        params = self._get_param("Parameters") or {}
        commands = params.get("commands") or []
        if not commands:
            raise AwsError("InvalidParameters", "commands is required")
        timeout = float((params.get("executionTimeout") or ["3600"])[0])
        workdir = (params.get("workingDirectory") or [None])[0]
        cid = str(uuid.uuid4())
        comment = self._get_param("Comment") or ""
        now = time.time()
        for iid in ids:
            inv = Invocation(command_id=cid, instance_id=iid, comment=comment, document=doc)
            cloud.invocations[(cid, iid)] = inv
            threading.Thread(target=cloud.execute, args=(inv, commands, timeout, workdir), daemon=True).start()
        with open(cloud.command_log, "a") as f:
            f.write(json.dumps({"command_id": cid, "sent_to": ids, "comment": comment, "parameters": params}) + "\n")
        return ActionResult({"Command": {
            "CommandId": cid, "DocumentName": doc, "DocumentVersion": "$DEFAULT", "Comment": comment,
            "ExpiresAfter": utc(now + int(self._get_param("TimeoutSeconds") or 3600)), "Parameters": params,
            "InstanceIds": ids, "Targets": [], "RequestedDateTime": utc(now), "Status": "Pending",
            "StatusDetails": "Pending", "TargetCount": len(ids), "CompletedCount": 0, "ErrorCount": 0,
            "DeliveryTimedOutCount": 0, "TimeoutSeconds": int(self._get_param("TimeoutSeconds") or 3600),
            "MaxConcurrency": "50", "MaxErrors": "0",
        }})

    def _invocation_view(inv: Invocation) -> dict[str, Any]:
        v = inv.view()
        start, end = v["start"], v["end"]
        return {
            "CommandId": inv.command_id, "InstanceId": inv.instance_id, "Comment": inv.comment,
            "DocumentName": inv.document, "DocumentVersion": "$DEFAULT", "PluginName": "aws:runShellScript",
            "ResponseCode": v["code"], "Status": v["status"], "StatusDetails": v["details"],
            "ExecutionStartDateTime": iso(start) if start else "",
            "ExecutionEndDateTime": iso(end) if end else "",
            "ExecutionElapsedTime": f"PT{(end - start):.3f}S" if start and end else "",
            "StandardOutputContent": v["stdout"], "StandardOutputUrl": "",
            "StandardErrorContent": v["stderr"], "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }

    def _get_command_invocation(self):
        if cloud.take_fault("ssm_get_error"):
            raise AwsError("InternalServerError", "An internal error occurred (injected)")
        inv = cloud.invocations.get((self._get_param("CommandId"), self._get_param("InstanceId")))
        if inv is None:
            raise AwsError("InvocationDoesNotExist", "")
        return ActionResult(_invocation_view(inv))

    def _list_command_invocations(self):
        # The same transient fault as GetCommandInvocation: both are how a caller polls.
        if cloud.take_fault("ssm_get_error"):
            raise AwsError("InternalServerError", "An internal error occurred (injected)")
        cid = self._get_param("CommandId")
        iid = self._get_param("InstanceId")
        rows = [inv for (c, i), inv in cloud.invocations.items() if (not cid or c == cid) and (not iid or i == iid)]
        out = []
        for inv in rows:
            v = inv.view()
            # The plugin's combined output as AWS gives it: stdout, then stderr after a marker,
            # cut to 2,500 characters (GetCommandInvocation has the full 24,000).
            combined = v["stdout"] + (f"\n----------ERROR-------\n{v['stderr']}" if v["stderr"] else "")
            out.append({
                "CommandId": inv.command_id, "InstanceId": inv.instance_id, "Comment": inv.comment,
                "DocumentName": inv.document, "RequestedDateTime": utc(inv.requested), "Status": v["status"],
                "StatusDetails": v["details"],
                "CommandPlugins": [{"Name": "aws:runShellScript", "Status": v["status"], "StatusDetails": v["details"],
                                    "ResponseCode": v["code"], "Output": combined[:2500]}]
                if self._get_param("Details") else [],
            })
        return ActionResult({"CommandInvocations": out})

    moto_delete_parameters = ssmr.SimpleSystemManagerResponse.delete_parameters

    def _delete_parameters(self):
        # DeleteParameters' Names: "Array Members: Minimum number of 1 item. Maximum number of
        # 10 items." (SSM API reference); moto takes any number.
        names = self._get_param("Names") or []
        if not 1 <= len(names) <= 10:
            raise AwsError("ValidationException", f"1 validation error detected: Value at 'names' failed to satisfy "
                                                  f"constraint: Member must have length between 1 and 10 ({len(names)})")
        return moto_delete_parameters(self)

    ssmr.SimpleSystemManagerResponse.delete_parameters = _delete_parameters
    ssmr.SimpleSystemManagerResponse.describe_instance_information = _describe_instance_information
    ssmr.SimpleSystemManagerResponse.send_command = _send_command
    ssmr.SimpleSystemManagerResponse.get_command_invocation = _get_command_invocation
    ssmr.SimpleSystemManagerResponse.list_command_invocations = _list_command_invocations
