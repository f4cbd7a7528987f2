"""#31.1: worker groups of their own stacks (infra/worker-group.yaml), added to a running cluster
and removed from it. The group, its hooks, tags and rules are rendered from that template
against the cluster stack's exports; the functions reach the group through their roles' grant
on the cluster tag (a denial fails the scenario)."""

from __future__ import annotations

import json

from conftest import scale_out, settle
from localcloud.client import wait_for


def node_labels(lc, via: str, instance: str) -> dict[str, str]:
    node = next(n for n in lc.nodes(via) if n["instance"] == instance)
    r = lc.docker(via, "node", "inspect", "--format", "{{json .Spec.Labels}}", node["id"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def terminate_actions(lc, instance: str) -> list[dict]:
    return [a for a in lc.actions(instance) if a["transition"].endswith("TERMINATING")]


def test_a_worker_group_added_later_joins_labelled_is_counted_and_its_deleted_stack_retires_its_nodes(cloud):
    scale_out(cloud, 1, 0)
    m = cloud.in_service("manager")[0]
    group = cloud.add_worker_group("batch", InstanceTypes="t3.small,t3.medium", DesiredCapacity=2, MaxSize=4,
                                   OnDemandBaseCapacity=1, OnDemandPercent=0, NodeLabels="tier=batch,disk=ssd")
    assert group == f"{cloud.cluster.name}-workers-batch"

    def members() -> list[str]:
        return [i["id"] for i in cloud.state()["groups"].get(group, []) if i["lifecycle"] == "InService"]

    wait_for(lambda: len(members()) == 2, 180, "the group's two instances InService")
    settle(cloud)
    lifecycle = {i["InstanceId"]: i.get("InstanceLifecycle", "on-demand")
                 for r in cloud.client("ec2").describe_instances(InstanceIds=members())["Reservations"]
                 for i in r["Instances"]}
    assert sorted(lifecycle.values()) == ["on-demand", "spot"], lifecycle
    for iid, capacity in lifecycle.items():
        assert node_labels(cloud, m, iid) == {
            "swarm.instance-id": iid, "swarm.zone": "us-east-1a", "swarm.instance-type": "t3.small",
            "swarm.capacity-type": capacity, "swarm.group": group, "tier": "batch", "disk": "ssd"}

    # Placed by the group's own label: both replicas on the group's nodes.
    r = cloud.docker(m, "service", "create", "--detach", "--name", "batch", "--replicas", "2", "--constraint",
                     "node.labels.tier==batch", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    hostname = {n["instance"]: n["hostname"] for n in cloud.nodes(m)}

    def running(service: str = "batch") -> list[str]:
        out = cloud.docker(m, "service", "ps", service, "--filter", "desired-state=running",
                           "--format", "{{.Node}} {{.CurrentState}}").stdout.splitlines()
        return sorted(line.split()[0] for line in out if line.split()[1:2] == ["Running"])

    wait_for(lambda: len(running()) == 2, 60, "both replicas running")
    assert set(running()) <= {hostname[i] for i in lifecycle}

    # Kept off Spot by the capacity label, also through a Spot interruption and the Spot
    # replacement that follows it.
    spot = next(i for i, c in lifecycle.items() if c == "spot")
    spot_hostname = hostname[spot]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "db", "--replicas", "2", "--constraint",
                     "node.labels.swarm.capacity-type==on-demand", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(running("db")) == 2, 60, "both db replicas running")
    assert spot_hostname not in running("db")

    # Counted with the cluster's own groups, and nothing to repair.
    report = cloud.reconcile()["clusters"][0]
    assert (report["members"], report["nodes"], report["repairs"], report["failed"]) == (3, 3, [], []), report

    cloud.spot_interrupt(spot)
    wait_for(lambda: spot not in [i["id"] for i in cloud.state()["groups"].get(group, [])], 120, "the Spot worker gone")
    wait_for(lambda: len(members()) == 2, 180, "its replacement InService")
    settle(cloud)
    replacement = next(i for i in members() if i not in lifecycle)
    hostname = {n["instance"]: n["hostname"] for n in cloud.nodes(m)}
    assert node_labels(cloud, m, replacement)["swarm.capacity-type"] == "spot"
    history = cloud.docker(m, "service", "ps", "db", "--format", "{{.Node}}").stdout.split()
    assert history and not set(history) & {hostname[replacement], spot_hostname}, history
    wait_for(lambda: len(running()) == 2, 60, "both batch replicas running again")

    # Scale-in: drained through the group's own terminate rule, completed by the function.
    cloud.client("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    wait_for(lambda: len(cloud.state()["groups"].get(group, [])) == 1, 120, "one instance left")
    assert [(a["result"], a["cause"]) for a in terminate_actions(cloud, replacement)] == [("CONTINUE", "complete")]
    wait_for(lambda: len(running()) == 2, 60, "both replicas running again")
    assert replacement not in {n["instance"] for n in cloud.nodes(m)}

    # Deleting the group's stack retires its last node through the hook before the group goes.
    assert cloud.docker(m, "service", "rm", "batch").returncode == 0
    last = members()[0]
    cloud.delete_worker_group("batch")
    assert [(a["result"], a["cause"]) for a in terminate_actions(cloud, last)] == [("CONTINUE", "complete")]
    assert {n["instance"] for n in cloud.nodes(m)} == {m}
    assert group not in {g["AutoScalingGroupName"] for g in cloud.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]}
    settle(cloud)
    report = cloud.reconcile()["clusters"][0]
    assert (report["members"], report["nodes"], report["repairs"]) == (1, 1, []), report
