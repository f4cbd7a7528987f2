"""Issue #4 scenarios: ECS container-instance state changes and the scheduled reconcile,
on the real swarm. Lost events are lost for real (the local cloud drops them)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from conftest import announced_once, bin_dir, killed_with_its_events_lost, scale_out, settle
from localcloud.client import Timeout, wait_for


def ready_nodes(lc):
    return [n for n in lc.nodes() if n["status"] == "ready"]


def manager_ips(lc):
    return sorted(i["ip"] for i in lc.instances("manager") if i["lifecycle"] == "InService")


def health_metrics(lc):
    """The reconcile's health metrics (its CloudWatch EMF lines), oldest first."""
    return [line for line in lc.function_log("reconcile") if "_aws" in line and "QuorumMargin" in line]


def last_response(lc, function):
    return [i for i in lc.control("invocations") if i["function"] == lc.fn(function)][-1]


def test_ecs_recreated_instance_rejoins_then_drains_then_leaves(cloud):
    scale_out(cloud, 1, 1)
    ecs = cloud.client("ecs")
    w = cloud.in_service("worker")[0]
    # The instance comes back with a fresh Docker state (as a recreated instance does).
    r = cloud.docker(w, "swarm", "leave", "--force")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(ready_nodes(cloud)) == 1, 60, "the node to leave")
    ci = ecs.register_container_instance(cluster=cloud.cluster.name, instanceIdentityDocument=f'{{"instanceId": "{w}"}}')
    ci_arn = ci["containerInstance"]["containerInstanceArn"]
    wait_for(lambda: any(n["instance"] == w for n in ready_nodes(cloud)), 90, "the instance to rejoin")
    settle(cloud)
    # The ECS registration joined it, or found it joined already (the reconcile may come first).
    last = last_response(cloud, "ecs-state-change")
    assert last["result"] == "ok" and last["response"]["outcome"] in ("done", "already-member"), last
    # ECS drains it: the swarm drains it too.
    ecs.update_container_instances_state(cluster=cloud.cluster.name, containerInstances=[ci_arn], status="DRAINING")
    wait_for(lambda: any(n["instance"] == w and n["availability"] == "drain" for n in cloud.nodes()), 60, "the node drained")
    settle(cloud)
    # ECS makes it ACTIVE again: the node takes tasks again (defect 6: it stayed drained).
    ecs.update_container_instances_state(cluster=cloud.cluster.name, containerInstances=[ci_arn], status="ACTIVE")
    wait_for(lambda: any(n["instance"] == w and n["availability"] == "active" for n in cloud.nodes()), 60, "the node active again")
    settle(cloud)
    # Deregistered while its instance is still in service (an agent re-registering, or taken
    # off ECS by hand): its tasks move, its node stays (defect 6: it was demoted and removed).
    ecs.deregister_container_instance(cluster=cloud.cluster.name, containerInstance=ci_arn, force=True)
    wait_for(lambda: any(n["instance"] == w and n["availability"] == "drain" for n in ready_nodes(cloud)), 60,
             "the node drained again")
    settle(cloud)
    assert [line.get("outcome") for line in cloud.function_log("ecs-state-change")
            if line.get("step") == "deregistered"] == ["drain-only"]
    # The Down node of its first life is the reconcile's to tidy. (The instance is still
    # InService in its group, so the reconcile may join it again: the group is the truth.)
    report = cloud.reconcile()
    settle(cloud)
    nodes = cloud.nodes()
    assert all(n["status"] == "ready" for n in nodes), (nodes, report)
    assert sum(n["instance"] == w for n in nodes) <= 1, nodes


def test_ecs_instance_outside_the_cluster_is_ignored(cloud):
    scale_out(cloud, 1, 0)
    ec2 = cloud.client("ec2")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    stray = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=cloud.cluster.subnet_id)["Instances"][0]["InstanceId"]
    before = len(cloud.control("invocations"))
    cloud.client("ecs").register_container_instance(cluster=cloud.cluster.name,
                                                    instanceIdentityDocument=f'{{"instanceId": "{stray}"}}')
    inv = wait_for(lambda: [i for i in cloud.control("invocations")[before:] if i["function"] == cloud.fn("ecs-state-change")], 30,
                   "the ECS function")[0]
    assert inv["response"]["outcome"] == "ignored", inv
    assert len(ready_nodes(cloud)) == 1

    # Then Auto Scaling's API is down while the stray instance leaves ECS: every attempt fails
    # (the SDK's retries, then Lambda's two), and Lambda's record of the event, with the last
    # attempt's error, lands in the failure queue; the doctor reads it without taking it.
    cloud.control("faults", {"autoscaling_unavailable": 1000})
    ecs = cloud.client("ecs")
    listed = ecs.list_container_instances(cluster=cloud.cluster.name)["containerInstanceArns"]
    (stray_arn,) = [ci["containerInstanceArn"] for ci in ecs.describe_container_instances(
        cluster=cloud.cluster.name, containerInstances=listed)["containerInstances"] if ci["ec2InstanceId"] == stray]
    ecs.deregister_container_instance(cluster=cloud.cluster.name, containerInstance=stray_arn, force=True)
    sqs = cloud.client("sqs")
    queue = sqs.get_queue_url(QueueName=f"swarm-{cloud.cluster.name}-failed-invocations")["QueueUrl"]
    wait_for(lambda: int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
                         ["Attributes"]["ApproximateNumberOfMessages"]) == 1, 60, "the event's record in the failure queue")
    cloud.control("faults", {"autoscaling_unavailable": 0})
    (record,) = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]]
    assert record["requestContext"]["condition"] == "RetriesExhausted", record
    assert record["responseContext"]["functionError"] == "Handled", record
    assert "ServiceUnavailable" in record["responsePayload"]["errorMessage"], record
    doctor = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "doctor", "--stack", cloud.cluster.name, "--json"],
                            env=cloud.operator_env(), capture_output=True, text=True, timeout=60)
    (f,) = json.loads(doctor.stdout)["findings"]
    assert f["broken"].startswith("1 message(s) waiting"), f
    assert f"the newest read: {cloud.fn('ecs-state-change')} RetriesExhausted after 3 attempt(s): " in f["broken"], f
    assert "ServiceUnavailable" in f["broken"], f


# The replacement's launch action waits past half its heartbeat timeout before the reconcile
# finds it: the reconcile re-arms it (its role must allow the heartbeat) before joining it.
@pytest.mark.timing(launch_heartbeat=60)
def test_reconcile_tidies_a_hard_killed_manager_and_joins_its_replacement(cloud):
    scale_out(cloud, 3, 1)
    victim = cloud.in_service("manager")[-1]
    # Its termination event and its replacement's launch event are both lost.
    replacement = killed_with_its_events_lost(cloud, "manager", victim)
    waiting = next(a for a in cloud.actions(replacement) if a["transition"].endswith("LAUNCHING"))
    wait_for(lambda: time.time() - waiting["started"] > 31, 40, "the launch action past half its timeout")
    # What the alarms see: one manager Down, quorum held by a bare majority (2 of 3).
    dry = cloud.reconcile({"dry_run": True, "id": str(uuid.uuid4())})
    at_risk = health_metrics(cloud)[-1]
    assert (at_risk["ReadyManagers"], at_risk["DownNodes"], at_risk["QuorumMargin"]) == (2, 1, 0), at_risk
    assert at_risk["DriftItems"] == len(dry["clusters"][0]["repairs"]) > 0, (at_risk, dry)
    report = _reconcile_until_converged(cloud, 120)
    settle(cloud)
    nodes = cloud.nodes()
    assert victim not in [n["instance"] for n in nodes], nodes
    managers = [n for n in nodes if n["role"] == "manager" and n["status"] == "ready"]
    assert len(managers) == 3 and replacement in [n["instance"] for n in managers], nodes
    assert cloud.dns_ips() == manager_ips(cloud)
    act = [a for a in cloud.actions(replacement) if a["transition"].endswith("LAUNCHING")][0]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete"), act
    assert report
    healthy = health_metrics(cloud)[-1]
    assert (healthy["ReadyManagers"], healthy["ReadyWorkers"], healthy["DownNodes"], healthy["QuorumMargin"],
            healthy["DriftItems"]) == (3, 1, 0, 1, 0), healthy
    # Told: the quorum at risk by the first repairing run (the dry run tells nothing), the dead
    # node removed, the replacement joined by the reconcile; nothing once converged.
    risks = cloud.published("Swarm Quorum At Risk")
    assert risks and all(r["detail"]["quorumMargin"] == 0 and r["detail"]["readyManagers"] == 2 for r in risks), risks
    removed = cloud.published("Swarm Node Retired")
    assert [e["detail"]["outcome"] for e in removed] == ["removed"], removed
    announced_once(cloud, "Swarm Node Joined", [replacement], role="manager", outcome="joined")


def _reconcile_until_converged(cloud, timeout):
    """Runs the reconcile until a run finds nothing left to repair; on a timeout, says what the
    last runs planned and what failed in them."""
    reports = []

    def once():
        resp = cloud.reconcile()
        settle(cloud)
        reports.append(resp)
        # A run that could not list the nodes (an election) has not converged, nor one whose
        # lister still sees nodes `unknown` (a leader elected moments ago): it leaves their
        # records alone until it knows.
        def settled(c):
            h = c["health"]
            return h["ready_managers"] + h["ready_workers"] + h["down_nodes"] == c["nodes"]
        return all(c["swarm_reachable"] and not c["repairs"] and settled(c) for c in resp["clusters"])

    try:
        wait_for(once, timeout, "a reconcile that converges")
    except Timeout:
        raise AssertionError(f"no reconcile converged in {timeout}s; the last runs: {reports[-2:]}") from None
    return reports[-1]


def test_reconcile_repairs_dns_drift_and_dry_run_changes_nothing(cloud):
    scale_out(cloud, 2, 0)
    r53 = cloud.client("route53")
    c = cloud.cluster
    good = manager_ips(cloud)
    first = cloud.in_service("manager")[0]
    r53.change_resource_record_sets(HostedZoneId=c.zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": c.dns_name, "Type": "A", "SetIdentifier": "by-hand",
                                                   "MultiValueAnswer": True, "TTL": 60,
                                                   "ResourceRecords": [{"Value": "10.0.200.200"}]}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": c.dns_name, "Type": "A", "SetIdentifier": first,
                                                   "MultiValueAnswer": True, "TTL": 5,
                                                   "ResourceRecords": [{"Value": "10.0.200.201"}]}},
    ]})
    drifted = cloud.dns_ips()
    assert "10.0.200.200" in drifted
    dry = cloud.reconcile({"dry_run": True, "id": str(uuid.uuid4())})
    kinds = sorted(r["repair"] for r in dry["clusters"][0]["repairs"])
    assert kinds == ["dns-delete", "dns-delete", "dns-upsert"], dry
    assert cloud.dns_ips() == drifted, "dry run changed nothing"
    cloud.reconcile()
    assert cloud.dns_ips() == good


def test_fifty_ecs_active_events_for_a_healthy_node_cost_one_check_each(cloud):
    """ECS sends ACTIVE whenever its agent reconnects or tasks start and stop (defect 5: each
    was a full join: a command to every manager, and for a manager a Route 53 write)."""
    import json

    scale_out(cloud, 3, 1)
    w = cloud.in_service("worker")[0]
    cloud.client("ecs").register_container_instance(cluster=cloud.cluster.name,
                                                    instanceIdentityDocument=f'{{"instanceId": "{w}"}}')
    # The registration's own ACTIVE is delivered on a thread: wait for its invocation.
    wait_for(lambda: any(i["function"] == cloud.fn("ecs-state-change") for i in cloud.control("invocations")), 60,
             "the registration's event handled")
    settle(cloud)
    active = [json.loads(line) for line in (cloud.state_dir / "events.jsonl").read_text().splitlines()]
    active = [e for e in active if e.get("source") == "aws.ecs" and e["detail"]["status"] == "ACTIVE"][-1]
    calls_before = len(cloud.control("api-calls"))
    log = cloud.state_dir / "ssm-commands.jsonl"
    sent_before = len(log.read_text().splitlines())
    invocations_before = len(cloud.control("invocations"))
    for _ in range(50):
        cloud.control("events", active)
    wait_for(lambda: len([i for i in cloud.control("invocations")[invocations_before:]
                          if i["function"] == cloud.fn("ecs-state-change")]) == 50, 120, "50 invocations")
    settle(cloud)
    invs = [i for i in cloud.control("invocations")[invocations_before:] if i["function"] == cloud.fn("ecs-state-change")]
    assert {i["response"]["outcome"] for i in invs} == {"already-member"}, invs[:3]
    calls = [c for c in cloud.control("api-calls")[calls_before:] if c["caller"] == "function"]
    sends = [json.loads(line) for line in log.read_text().splitlines()[sent_before:]]
    sends = [s for s in sends if "sent_to" in s]
    assert len(sends) == 50 and all(len(s["sent_to"]) == 1 for s in sends), "one command to one manager per event"
    assert not [c for c in calls if c["service"] == "route53"], "no Route 53 call"
    per_event = len(calls) / 50
    assert per_event <= 8, f"{per_event} calls per event"
    print(f"calls per healthy ACTIVE event: {per_event}")


def node_labels(lc, via: str, instance: str) -> dict[str, str]:
    node = next(n for n in lc.nodes(via) if n["instance"] == instance)
    r = lc.docker(via, "node", "inspect", "--format", "{{json .Spec.Labels}}", node["id"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_nodes_carry_their_placement_labels_and_one_removed_by_hand_is_put_back(cloud):
    """#31.2: a worker joins labelled with its zone, instance type, capacity type, group and its
    group's own labels (tag swarm:node-labels); a service constrained by them runs there; a
    label removed by hand is put back by one reconcile."""
    g = cloud.cluster.worker_group
    asg = cloud.client("autoscaling")
    asg.create_or_update_tags(Tags=[{
        "ResourceId": g, "ResourceType": "auto-scaling-group", "Key": "swarm:node-labels",
        "Value": "tier=batch,disk=ssd", "PropagateAtLaunch": False}])
    # One On-Demand worker, the rest Spot.
    asg.update_auto_scaling_group(AutoScalingGroupName=g, MixedInstancesPolicy={
        "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": f"{cloud.cluster.name}-node",
                                                           "Version": "$Latest"}},
        "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0}})
    scale_out(cloud, 1, 2)
    m = cloud.in_service("manager")[0]
    lifecycle = {i["InstanceId"]: i.get("InstanceLifecycle", "on-demand")
                 for r in cloud.client("ec2").describe_instances(InstanceIds=cloud.in_service("worker"))["Reservations"]
                 for i in r["Instances"]}
    assert sorted(lifecycle.values()) == ["on-demand", "spot"], lifecycle
    w = next(i for i, c in lifecycle.items() if c == "on-demand")
    spot = next(i for i, c in lifecycle.items() if c == "spot")
    want = {"swarm.instance-id": w, "swarm.zone": "us-east-1a", "swarm.instance-type": "t3.small",
            "swarm.capacity-type": "on-demand", "swarm.group": g, "tier": "batch", "disk": "ssd"}
    assert node_labels(cloud, m, w) == want
    assert node_labels(cloud, m, spot) == {**want, "swarm.instance-id": spot, "swarm.capacity-type": "spot"}
    assert node_labels(cloud, m, m)["swarm.group"] == cloud.cluster.manager_group
    # Kept off Spot by its label: both replicas on the On-Demand worker.
    r = cloud.docker(m, "service", "create", "--detach", "--name", "db", "--replicas", "2", "--constraint",
                     "node.labels.tier==batch", "--constraint", "node.labels.swarm.capacity-type==on-demand",
                     "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr

    def running() -> list[str]:
        out = cloud.docker(m, "service", "ps", "db", "--filter", "desired-state=running",
                           "--format", "{{.Node}} {{.CurrentState}}").stdout.splitlines()
        return [line.split()[0] for line in out if line.split()[1:2] == ["Running"]]

    wait_for(lambda: len(running()) == 2, 60, "both replicas running")
    hostname = {n["instance"]: n["hostname"] for n in cloud.nodes(m)}
    assert running() == [hostname[w], hostname[w]]

    node = next(n["id"] for n in cloud.nodes(m) if n["instance"] == w)
    assert cloud.docker(m, "node", "update", "--label-rm", "swarm.zone", node).returncode == 0
    report = cloud.reconcile()["clusters"][0]
    assert [(r["repair"], r["labels"]) for r in report["repairs"]] == [("label", ["swarm.zone"])], report
    assert report["failed"] == [], report
    assert node_labels(cloud, m, w) == want
    assert cloud.reconcile()["clusters"][0]["repairs"] == []
