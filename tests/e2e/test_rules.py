"""The stack's EventBridge rules as the local cloud deploys them: the template's own patterns,
targets, dead-letter queue and invoke permissions, held by EventBridge (moto) and read through
its API, delivery following what it holds (a disabled rule delivers nothing, a function without
the rule's permission gets nothing and the event goes to the dead-letter queue), and
TestEventPattern as AWS documents it. What `swarm-lifecycle doctor` reads (#35)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, fixture_event
from localcloud.client import STACK_FUNCTIONS

# Which of the template's rules each fixture of events/ reaches (None: none of them).
REACHES = {
    "lifecycle-launch-manager.json": "LaunchRule",
    "lifecycle-launch-worker.json": "LaunchRule",
    "lifecycle-launch-unmanaged-group.json": None,
    "lifecycle-terminate-manager.json": "TerminateRule",
    "lifecycle-terminate-worker.json": "TerminateRule",
    "ecs-instance-active.json": "EcsRule",
    "ecs-instance-draining.json": "EcsRule",
    "ec2-spot-interruption-warning.json": "SpotRule",
    "ec2-rebalance-recommendation.json": "SpotRule",
    "ec2-instance-stopping.json": "InstanceStateRule",
    "ec2-instance-running.json": "InstanceStateRule",
    "health-instance-retirement-scheduled.json": "ScheduledChangeRule",
    "scheduled-reconcile.json": None,
}


def test_the_stacks_rules_are_eventbridges_a_disabled_one_delivers_nothing_and_cloudformation_names_them(cloud):
    cloudformation_describes_the_stack_by_what_exists(cloud)
    events = cloud.client("events")
    name = cloud.cluster.name
    deployed = {r["Name"]: r for r in events.list_rules(NamePrefix=f"{name}-")["Rules"]}
    assert sorted(deployed) == sorted(f"{name}-{logical}" for logical in
                                      ("LaunchRule", "TerminateRule", "EcsRule", "SpotRule", "InstanceStateRule",
                                       "ScheduledChangeRule")), sorted(deployed)
    rules = cloud.stack_rules()
    for rule in rules:
        seen = deployed[rule["name"]]
        assert seen["State"] == "ENABLED" and json.loads(seen["EventPattern"]) == rule["pattern"], seen
        (target,) = events.list_targets_by_rule(Rule=rule["name"])["Targets"]
        assert target["Arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{rule['function']}", target
        assert target["DeadLetterConfig"]["Arn"].endswith(f":swarm-{name}-undelivered-events"), target

    # Each fixture, aimed at this cluster, matches exactly the rules it should, and is
    # delivered to exactly their functions.
    functions = {r["name"].removeprefix(f"{name}-"): r["function"] for r in rules}
    for fixture, reaches in REACHES.items():
        event = fixture_event(cloud, fixture, "i-0123456789abcdef0")
        matched = [r["name"].removeprefix(f"{name}-") for r in rules
                   if events.test_event_pattern(EventPattern=json.dumps(r["pattern"]), Event=json.dumps(event))["Result"]]
        assert matched == ([reaches] if reaches else []), (fixture, matched)
    # Delivery follows the rule's state in EventBridge: disabled, the launch reaches nothing.
    launch = fixture_event(cloud, "lifecycle-test-notification.json", "i-0123456789abcdef0")
    events.disable_rule(Name=f"{name}-LaunchRule")
    assert cloud.control("events", launch)["targets"] == []
    events.enable_rule(Name=f"{name}-LaunchRule")
    assert cloud.control("events", launch)["targets"] == [functions["LaunchRule"]]
    # Without its invoke permission the event is not retried: it goes to the rule's dead-letter
    # queue at once, saying why.
    # Lambda's GetPolicy shows each function's permission for its rule, as AddPermission
    # writes it; RemovePermission takes it away.
    lam = cloud.client("lambda")
    for rule in rules:
        policy = json.loads(lam.get_policy(FunctionName=rule["function"])["Policy"])
        sources = [st["Condition"]["ArnLike"]["AWS:SourceArn"] for st in policy["Statement"]
                   if st["Principal"] == {"Service": "events.amazonaws.com"} and st["Action"] == "lambda:InvokeFunction"]
        assert sources == [f"arn:aws:events:us-east-1:123456789012:rule/{rule['name']}"], (rule["name"], policy)
    grant = next(g for g in cloud.stack_permissions() if g["statement_id"] == "LaunchInvokePermission")
    assert grant["function"] == functions["LaunchRule"] and grant["source_arn"].endswith(f":rule/{name}-LaunchRule")
    lam.remove_permission(FunctionName=grant["function"], StatementId=grant["statement_id"])
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=grant["function"])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException", e.value
    assert cloud.control("events", launch)["targets"] == []
    sqs = cloud.client("sqs")
    dlq = sqs.get_queue_url(QueueName=f"swarm-{name}-undelivered-events")["QueueUrl"]
    (msg,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    said = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    assert said["ERROR_CODE"] == "NO_PERMISSIONS" and said["RULE_ARN"] == grant["source_arn"], said
    assert json.loads(msg["Body"])["id"] == launch["id"]
    lam.add_permission(FunctionName=grant["function"], StatementId=grant["statement_id"], Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=grant["source_arn"])
    assert cloud.control("events", launch)["targets"] == [functions["LaunchRule"]]
    # Its configuration: the stack's environment, without the runtime's reserved variables.
    conf = lam.get_function_configuration(FunctionName=functions["LaunchRule"])
    env = conf["Environment"]["Variables"]
    assert env["CLUSTER_NAME"] == name and not [k for k in env if k.startswith("AWS_")], env


    # TestEventPattern refuses an event without one of its mandatory fields.
    for missing in ("id", "resources", "detail-type"):
        event = json.loads((ROOT / "events" / "lifecycle-launch-worker.json").read_text())
        del event[missing]
        with pytest.raises(ClientError) as e:
            events.test_event_pattern(EventPattern=json.dumps({"source": ["aws.autoscaling"]}), Event=json.dumps(event))
        assert e.value.response["Error"]["Code"] == "ValidationException" and missing in str(e.value), e.value


def cloudformation_describes_the_stack_by_what_exists(cloud) -> None:
    """DescribeStacks and DescribeStackResources name what exists, by its physical id; the
    functions are named as the template names them."""
    t, r = cloud.stack_renderer()
    for logical, short in STACK_FUNCTIONS.items():
        assert r.resolve(t["Resources"][logical]["Properties"]["FunctionName"]) == cloud.fn(short), logical
    cfn, name = cloud.client("cloudformation"), cloud.cluster.name
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["ClusterName"] == name and params["DnsTtl"] == str(cloud.timing.dns_ttl), params
    assert params["EcsClusterArn"].endswith(f":cluster/{name}"), params
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ManagerGroup"] == cloud.cluster.manager_group and outputs["WorkerGroup"] == cloud.cluster.worker_group
    sqs = cloud.client("sqs")
    assert outputs["UndeliveredEventsQueue"] == sqs.get_queue_url(QueueName=f"swarm-{name}-undelivered-events")["QueueUrl"]
    # Each resource named is there by that physical id.
    resources = cfn.describe_stack_resources(StackName=stack["StackId"])["StackResources"]
    kinds = {}
    for res in resources:
        kinds.setdefault(res["ResourceType"], []).append(res["LogicalResourceId"])
        if res["ResourceType"] == "AWS::Events::Rule":
            cloud.client("events").describe_rule(Name=res["PhysicalResourceId"])
        elif res["ResourceType"] == "AWS::SQS::Queue":
            sqs.get_queue_attributes(QueueUrl=res["PhysicalResourceId"], AttributeNames=["QueueArn"])
        elif res["ResourceType"] == "AWS::AutoScaling::AutoScalingGroup":
            groups = cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[res["PhysicalResourceId"]])
            assert groups["AutoScalingGroups"], res
        elif res["ResourceType"] == "AWS::Lambda::Function":
            assert res["PhysicalResourceId"] in cloud.state()["functions"], res
    assert len(kinds["AWS::Events::Rule"]) == 6 and len(kinds["AWS::Lambda::Function"]) == 8, kinds
    (one,) = cfn.describe_stack_resources(StackName=name, LogicalResourceId="LaunchRule")["StackResources"]
    assert one["PhysicalResourceId"] == f"{name}-LaunchRule", one
    with pytest.raises(ClientError) as e:
        cfn.describe_stacks(StackName="no-such-stack")
    assert e.value.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(e.value), e.value
