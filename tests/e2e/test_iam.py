"""IAM from infra/template.yaml, enforced by the local cloud: what the roles allow and refuse
on the instances themselves, and that a statement missing from a function role fails the
suite with the denied action named."""

from __future__ import annotations

import json

import pytest

from conftest import scale_out
from localcloud.client import wait_for

READ_TOKEN = ("aws ssm get-parameter --region \"$AWS_SSM_REGION_NAME\" --name {name} --with-decryption "
              "--query Parameter.Value --output text | grep -c '^SWMTKN-'")  # prints 1 for a token, never the token itself


def run_on(lc, instance: str, command: str) -> dict:
    """Runs one command through SSM on `instance`, as an operator would; the instance's own
    credentials (its instance profile, from the metadata service) do the AWS calls."""
    ssm = lc.client("ssm")
    cid = ssm.send_command(InstanceIds=[instance], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": [command]})["Command"]["CommandId"]
    return wait_for(lambda: (lambda r: r if r["Status"] in ("Success", "Failed") else None)(
        ssm.get_command_invocation(CommandId=cid, InstanceId=instance)), 60, "the command to finish")


@pytest.mark.expect_denials
def test_worker_cannot_read_the_manager_token(cloud):
    scale_out(cloud, 1, 1)
    manager, worker = cloud.in_service("manager")[0], cloud.in_service("worker")[0]
    prefix = "/swarm/demo/join-token"
    own = run_on(cloud, worker, READ_TOKEN.format(name=f"{prefix}/worker"))
    assert own["Status"] == "Success" and own["StandardOutputContent"].strip() == "1", own
    stolen = run_on(cloud, worker, READ_TOKEN.format(name=f"{prefix}/manager"))
    assert stolen["StandardOutputContent"].strip() == "0", "the worker read the manager token"
    assert "AccessDenied" in stolen["StandardErrorContent"], stolen["StandardErrorContent"]
    managers = run_on(cloud, manager, READ_TOKEN.format(name=f"{prefix}/manager"))
    assert managers["Status"] == "Success" and managers["StandardOutputContent"].strip() == "1", managers
    denials = cloud.denials()
    assert [(d["principal"], d["action"], d["resource"].split(":")[-1]) for d in denials] == [
        ("WorkerRole", denials[0]["action"], f"parameter{prefix}/manager")], denials
    assert denials[0]["action"] in ("ssm:GetParameter", "kms:Decrypt")


@pytest.mark.expect_denials
@pytest.mark.template_without(role="LifecycleRole", action="ssm:ListCommandInvocations")
def test_a_statement_missing_from_a_role_is_denied_and_named(cloud):
    """The proof that enforcement can fail a scenario: the lifecycle role without
    ssm:ListCommandInvocations cannot poll the worker's join (a command to several instances)."""
    cloud.scale("manager", 1)
    cloud.scale("worker", 1)
    denied = wait_for(lambda: [d for d in cloud.denials() if d["action"] == "ssm:ListCommandInvocations"], 120,
                      "the missing permission to be denied")
    assert denied[0]["principal"] == "LifecycleRole" and denied[0]["caller"] == "function", denied
    assert "not authorized to perform: ssm:ListCommandInvocations" in denied[0]["message"]


@pytest.mark.cluster_params(ActionEventsToAlarms="Swarm Node Joined,Swarm Launch Abandoned")
def test_a_failed_event_and_a_forwarded_action_event_reach_the_encrypted_alarm_topic(cloud):
    """#33.1, #33.2: with ActionEventsToAlarms set, the template's topic policy replaces SNS's
    default one, and the topic is encrypted with AlarmKey. The first manager's "Swarm Node
    Joined" is forwarded by EventBridge; then a launch event ages out in Lambda's queue (the
    launch function may run one invocation, a join hangs in it) and reaches the failure
    queue, whose alarm fires (CloudWatch publishes). Both deliveries must pass the topic's and
    the key's policies."""
    from conftest import bin_dir

    scale_out(cloud, 1, 0)
    cloud.deploy(bin_dir(), extra_env={"COMMAND_TIMEOUT_SECONDS": "15"}, concurrency={"launch-hook": 1},
                 max_event_age={"launch-hook": 3})
    cloud.control("faults", {"hang_command:swarm join": 1})
    cloud.scale("worker", 2)
    alarm = wait_for(lambda: [e for e in cloud.timeline() if e["kind"] == "alarm"], 60, "the failure queue's alarm")
    assert [(e["name"], e["delivered"]) for e in alarm] == [("FailedInvocationsAlarm", True)], alarm
    # The failure queue holds Lambda's invocation record of the event that aged out.
    sqs = cloud.client("sqs")
    queue = sqs.get_queue_url(QueueName=f"swarm-{cloud.cluster.name}-failed-invocations")["QueueUrl"]
    records = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    assert records and all(r["requestContext"]["condition"] == "EventAgeExceeded"
                           and r["requestContext"]["functionArn"].endswith(f":function:{cloud.fn('launch-hook')}:$LATEST")
                           and r["requestPayload"]["detail-type"] == "EC2 Instance-launch Lifecycle Action" for r in records), records
    forwarded = [e for e in cloud.timeline() if e["kind"] == "sns-delivery"]
    assert forwarded and all(e["delivered"] for e in forwarded), forwarded
    assert {e["detail_type"] for e in forwarded} >= {"Swarm Node Joined"}, forwarded
