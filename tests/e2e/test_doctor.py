"""#35: `swarm-lifecycle doctor` on the operator's role: a fresh stack passes; each wire broken
through AWS's own API, one at a time (the operator's own role among them), is named with its fix
(exit 1), and passes again once mended; no stack named is exit 2 with what to do."""

from __future__ import annotations

import json
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import bin_dir
from localcloud.iam import alarm_topic_arn


def doctor(lc, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir() / "swarm-lifecycle"), "doctor", "--stack", lc.cluster.name, *args],
                          env=lc.operator_env(), capture_output=True, text=True, timeout=60)


def findings(lc) -> list[dict]:
    r = doctor(lc, "--json")
    assert r.returncode in (0, 1), (r.returncode, r.stderr)
    out = json.loads(r.stdout)["findings"]
    assert (r.returncode == 0) == (out == []), (r.returncode, out)
    return out


@pytest.mark.expect_denials
def test_doctor_names_each_broken_wire_and_its_fix(cloud):
    name = cloud.cluster.name
    ok = doctor(cloud)
    assert ok.returncode == 0 and "every wire holds" in ok.stdout, (ok.stdout, ok.stderr)
    events, lam, asg, sqs = (cloud.client(s) for s in ("events", "lambda", "autoscaling", "sqs"))

    # A rule disabled by hand.
    events.disable_rule(Name=f"{name}-LaunchRule")
    (f,) = findings(cloud)
    assert f["wire"] == f"rule {name}-LaunchRule" and "disabled" in f["broken"] and "enable-rule" in f["fix"], f
    events.enable_rule(Name=f"{name}-LaunchRule")

    # A pattern edited so that its events no longer match it.
    rule = events.describe_rule(Name=f"{name}-TerminateRule")
    pattern = json.loads(rule["EventPattern"])
    events.put_rule(Name=rule["Name"], EventPattern=json.dumps({**pattern, "detail-type": ["EC2 Instance Terminate"]}))
    found = findings(cloud)
    assert {(f["wire"], f["broken"]) for f in found} == {
        (f"rule {name}-TerminateRule", f"its pattern does not match {fixture}")
        for fixture in ("lifecycle-terminate-manager.json", "lifecycle-terminate-worker.json")}, found
    events.put_rule(Name=rule["Name"], EventPattern=rule["EventPattern"])

    # A function's invoke permission for its rule removed.
    spot = cloud.fn("spot-notice")
    grant = json.loads(lam.get_policy(FunctionName=spot)["Policy"])["Statement"][0]
    lam.remove_permission(FunctionName=spot, StatementId=grant["Sid"])
    (f,) = findings(cloud)
    assert f["wire"] == f"function {spot}" and f"rule {name}-SpotRule" in f["broken"], f
    lam.add_permission(FunctionName=spot, StatementId=grant["Sid"], Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=grant["Condition"]["ArnLike"]["AWS:SourceArn"])

    # A function's environment edited by hand: it now serves another cluster. Lambda answers the
    # update InProgress, then Successful; a reserved variable is refused.
    changed = cloud.fn("scheduled-change")
    variables = lam.get_function_configuration(FunctionName=changed)["Environment"]["Variables"]
    update = lam.update_function_configuration(FunctionName=changed,
                                               Environment={"Variables": {**variables, "CLUSTER_NAME": "other"}})
    assert update["LastUpdateStatus"] == "InProgress", update
    lam.get_waiter("function_updated").wait(FunctionName=changed, WaiterConfig={"Delay": 1})
    (f,) = findings(cloud)
    assert f["wire"] == f"function {changed}" and f"CLUSTER_NAME is \"other\", the stack says \"{name}\"" == f["broken"], f
    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(FunctionName=changed, Environment={"Variables": {"AWS_REGION": "eu-west-1"}})
    assert "reserved keys" in refused.value.response["Error"]["Message"], refused.value
    lam.update_function_configuration(FunctionName=changed, Environment={"Variables": variables})

    # A function moved to another role by hand (the reconcile function's): its grants are no
    # longer the ones its calls were proven against. A role Lambda cannot assume is refused.
    own = lam.get_function_configuration(FunctionName=changed)["Role"]
    other = lam.get_function_configuration(FunctionName=cloud.fn("reconcile"))["Role"]
    lam.update_function_configuration(FunctionName=changed, Role=other)
    lam.get_waiter("function_updated").wait(FunctionName=changed, WaiterConfig={"Delay": 1})
    (f,) = findings(cloud)
    assert f["wire"] == f"function {changed}" and f["broken"] == f"runs as {other}, not the stack's role NoticeRole", f
    assert f"--role {own}" in f["fix"], f
    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(FunctionName=changed, Role="arn:aws:iam::123456789012:role/NoSuchRole")
    assert "cannot be assumed by Lambda" in refused.value.response["Error"]["Message"], refused.value
    lam.update_function_configuration(FunctionName=changed, Role=own)

    # A terminate hook shorter than the record's TTL + HoldExtra.
    group = cloud.cluster.manager_group
    hook = asg.describe_lifecycle_hooks(AutoScalingGroupName=group, LifecycleHookNames=["swarm-terminate"])["LifecycleHooks"][0]
    short = cloud.timing.dns_ttl + cloud.timing.hold_extra - 1
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="swarm-terminate",
                           LifecycleTransition=hook["LifecycleTransition"], HeartbeatTimeout=short,
                           DefaultResult=hook["DefaultResult"])
    (f,) = findings(cloud)
    assert f["wire"] == f"hook swarm-terminate of {group}" and f"{short} s is shorter" in f["broken"], f
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="swarm-terminate",
                           LifecycleTransition=hook["LifecycleTransition"], HeartbeatTimeout=hook["HeartbeatTimeout"],
                           DefaultResult=hook["DefaultResult"])

    # An event left in the failure queue: Lambda's invocation record of an event whose three
    # attempts failed ("details about the request and response"). The doctor reads it without
    # taking it (visibility timeout 0): it is still there for the next reader.
    queue = sqs.get_queue_url(QueueName=f"swarm-{name}-failed-invocations")["QueueUrl"]
    hook = cloud.fn("terminate-hook")
    record = {"version": "1.0", "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted",
                                                   "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{hook}:$LATEST",
                                                   "approximateInvokeCount": 3},
              "requestPayload": {"detail-type": "EC2 Instance-terminate Lifecycle Action"},
              "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Handled"},
              "responsePayload": {"errorType": "&lambda_runtime::Error", "errorMessage": "Route 53 throttled"}}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    (f,) = findings(cloud)
    assert f["wire"] == f"queue swarm-{name}-failed-invocations", f
    assert f["broken"].startswith("1 message(s) waiting, the oldest read "), f
    assert f["broken"].endswith(f"the newest read: {hook} RetriesExhausted after 3 attempt(s): Route 53 throttled"), f
    (again,) = findings(cloud)
    assert again["broken"].startswith("1 message(s) waiting"), again
    sqs.purge_queue(QueueUrl=queue)

    # A join token stored in plain text, then under another key than the cluster's (its value is
    # never read: DescribeParameters only).
    ssm = cloud.client("ssm")
    token = f"/swarm/{name}/join-token/worker"
    ssm.put_parameter(Name=token, Type="String", Value="SWMTKN-1-plain")
    (f,) = findings(cloud)
    assert f["wire"] == f"join token {token}" and f["broken"] == "stored as String, not encrypted", f
    assert f"delete-parameter --name {token}" in f["fix"], f
    ssm.delete_parameter(Name=token)
    ssm.put_parameter(Name=token, Type="SecureString", KeyId="alias/aws/ssm", Value="SWMTKN-1-other-key")
    (f,) = findings(cloud)
    assert f["wire"] == f"join token {token}" and "encrypted with alias/aws/ssm, not the cluster's key" in f["broken"], f
    ssm.delete_parameter(Name=token)

    # The alarm topic's policy replaced by one without CloudWatch, then its key changed: either
    # way every alarm would fire into nothing (the failure queue's alarm scenario, test_iam,
    # shows the delivery refused by the policy SNS holds).
    sns = cloud.client("sns")
    topic = alarm_topic_arn("us-east-1", "123456789012", name)
    held = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    events_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                           "Action": "sns:Publish", "Resource": topic}]}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(events_only))
    (f,) = findings(cloud)
    assert f["wire"] == f"alarm topic {topic}" and "does not let cloudwatch.amazonaws.com sns:Publish" in f["broken"], f
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=held["Policy"])
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    (f,) = findings(cloud)
    assert f["wire"] == f"alarm topic {topic}" and "encrypted with alias/aws/sns, not the stack's AlarmKey" in f["broken"], f
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=held["KmsMasterKeyId"])

    # The operator's role loses a statement (its policy edited by hand): the doctor has IAM
    # simulate each call of the command for the caller and names the command that breaks.
    iam = cloud.client("iam")
    operator = iam.get_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator")["PolicyDocument"]
    cut = {**operator, "Statement": [st for st in operator["Statement"] if st.get("Sid") != "RetireThroughTheGroups"]}
    iam.put_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator", PolicyDocument=json.dumps(cut))
    (f,) = findings(cloud)
    assert f["wire"].startswith("your credentials (arn:aws:sts::123456789012:assumed-role/OperatorRole/"), f
    assert f["broken"].startswith("may not call autoscaling:TerminateInstanceInAutoScalingGroup on "), f
    assert all(g in f["broken"] for g in (cloud.cluster.manager_group, cloud.cluster.worker_group)), f
    assert f["broken"].endswith("(implicitDeny): `retire` will be refused"), f
    iam.put_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator", PolicyDocument=json.dumps(operator))
    # Without leave to simulate its own policies, the check says it cannot be made (IAM refused).
    checks = iam.get_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator-checks-its-access")["PolicyDocument"]
    other = {"Version": "2012-10-17", "Statement": [{**checks["Statement"][0], "Action": "iam:GetRole"}]}
    iam.put_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator-checks-its-access", PolicyDocument=json.dumps(other))
    (f,) = findings(cloud)
    assert "cannot be checked: iam:SimulatePrincipalPolicy for arn:aws:iam::123456789012:role/OperatorRole: AccessDenied" \
        in f["broken"], f
    iam.put_role_policy(RoleName="OperatorRole", PolicyName="swarm-operator-checks-its-access", PolicyDocument=json.dumps(checks))

    again = doctor(cloud)
    assert again.returncode == 0, (again.stdout, again.stderr)
    # Credentials that may not read the stack (a function's role), and none at all: exit 2, one
    # line naming the refused read and what to do.
    notice = {**cloud.operator_env(), "AWS_ACCESS_KEY_ID": cloud.role_keys["NoticeRole"]}
    refused = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "doctor", "--stack", name], env=notice,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, (refused.returncode, refused.stderr)
    assert "not authorized to perform: cloudformation:DescribeStacks" in refused.stderr, refused.stderr
    assert "the caller's IAM policy lacks this action" in refused.stderr, refused.stderr
    # Those two refusals are the only ones: the OperatorRole's own reads above were all allowed.
    assert [(d["principal"], d["action"]) for d in cloud.denials()] == [
        ("OperatorRole", "iam:SimulatePrincipalPolicy"), ("NoticeRole", "cloudformation:DescribeStacks")]
    bare = {k: v for k, v in cloud.operator_env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                       "AWS_SESSION_TOKEN")}
    none = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "doctor", "--stack", name],
                          env={**bare, "HOME": str(cloud.state_dir), "AWS_EC2_METADATA_DISABLED": "true"},
                          capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and none.stderr.count("\n") == 1, (none.returncode, none.stderr)
    assert "no usable AWS credentials" in none.stderr, none.stderr

    # No stack named, none to default to: exit 2, saying what to pass.
    env = {k: v for k, v in cloud.operator_env().items() if k != "SWARM_CLUSTER"}
    which = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "doctor"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert which.returncode == 2 and "--stack" in which.stderr, (which.returncode, which.stderr)
