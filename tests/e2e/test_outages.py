"""Issue #14: nodes cut off without leaving. A manager partitioned from the others (its agent
still answers: SSM is not between the hosts) and healed again; a whole zone lost at once."""

from __future__ import annotations

import pytest

from conftest import scale_out, settle
from localcloud.client import wait_for
from test_ecs_reconcile import _reconcile_until_converged
from test_lifecycle import create_service, manager_ips, running_tasks


def zonal_zones(lc) -> list[str]:
    """The zones (by the nodes' swarm.zone label) of the zonal service's running tasks."""
    m = next(i for i in lc.in_service("manager") if lc.docker(i, "node", "ls", "-q").returncode == 0)
    r = lc.docker(m, "service", "ps", "zonal", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")
    hosts = [line.split()[0] for line in r.stdout.splitlines() if " Running" in line]
    zone = {}
    for n in lc.nodes(m):
        z = lc.docker(m, "node", "inspect", n["id"], "--format", '{{index .Spec.Labels "swarm.zone"}}').stdout.strip()
        zone[n["hostname"]] = z
    return [zone.get(h, "?") for h in hosts]


def leader(lc):
    return next(n["instance"] for n in lc.nodes() if n["leader"] == "true")


@pytest.mark.timing(reconcile_grace=300)
def test_a_partitioned_manager_is_kept_out_of_the_record_and_rejoins_after_the_heal(cloud):
    scale_out(cloud, 3, 1)
    before = sorted((n["id"], n["instance"]) for n in cloud.nodes())
    lead = leader(cloud)
    victim = next(m for m in cloud.in_service("manager") if m != lead)
    others = [m for m in cloud.in_service("manager") if m != victim]
    victim_ip = next(i["ip"] for i in cloud.instances("manager") if i["id"] == victim)

    cloud.control("partition", {"instance": victim, "cut": True})
    wait_for(lambda: [n["status"] for n in cloud.nodes(via=lead) if n["instance"] == victim] == ["down"], 60,
             "the majority to see the partitioned manager down")
    # The majority keeps quorum: the swarm stays writable.
    r = cloud.docker(lead, "service", "create", "--detach", "--name", "during", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr

    # Within the grace period the reconcile removes no node; the record holds only the
    # managers a client can reach.
    report = cloud.reconcile()
    settle(cloud)
    assert not [x for c in report["clusters"] for x in c["repairs"] if x["repair"] in ("remove-node", "join")], report
    assert sorted((n["id"], n["instance"]) for n in cloud.nodes(via=lead)) == before
    assert victim_ip not in cloud.dns_ips() and len(cloud.dns_ips()) == 2, cloud.dns_ips()

    cloud.control("partition", {"instance": victim, "cut": False})
    # The healed manager comes back with a higher raft term and forces an election: the swarm
    # answers again once it has a leader (wait_for takes a failed listing as not yet).
    # swarmkit's raft has no pre-vote: each round lasts 10-20 s (ElectionTick 10 of 1 s) and the
    # healed manager, whose log is behind, campaigns first in about one round in three and
    # cannot win. 2-4 rounds, a leader 13-36 s after the heal (15 runs, RELIABILITY); the
    # bound allows 12 rounds, as a round's loss is a coin toss, not a delay of ours.
    wait_for(lambda: all(n["status"] == "ready" for n in cloud.nodes()), 240, "every node ready after the heal")
    _reconcile_until_converged(cloud, 60)
    settle(cloud)
    # The same nodes as before: none removed, none duplicated; every manager in the record.
    nodes = wait_for(cloud.nodes, 60, "a leader")
    assert sorted((n["id"], n["instance"]) for n in nodes) == before
    assert cloud.dns_ips() == manager_ips(cloud)
    assert all(cloud.docker(m, "node", "ls", "-q").returncode == 0 for m in others + [victim])


# The hook's timeout (TTL + hold_extra) outlasts a leader election: the lost manager may be the
# leader, and the managers left answer only once they have elected another (~20 s here).
@pytest.mark.zones(3)
@pytest.mark.timing(hold_extra=25)
def test_a_zone_lost_keeps_quorum_and_the_groups_refill_the_other_zones(cloud):
    scale_out(cloud, 3, 3)
    zones = {i: cloud.zone_of(i) for i in cloud.in_service("manager") + cloud.in_service("worker")}
    # One manager and one worker per zone.
    assert sorted(zones.values()) == sorted(["us-east-1a", "us-east-1b", "us-east-1c"] * 2), zones
    create_service(cloud, replicas=3)
    # Issue #31: spread over the zones by the nodes' zone label: one task per zone.
    lead = cloud.in_service("manager")[0]
    r = cloud.docker(lead, "service", "create", "--detach", "--name", "zonal", "--replicas", "3",
                     "--placement-pref", "spread=node.labels.swarm.zone", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(zonal_zones(cloud)) == 3, 60, "the zonal service running")
    assert sorted(zonal_zones(cloud)) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    lost = cloud.control("zone-lost", {"zone": "us-east-1b"})["instances"]
    assert sorted(lost) == sorted(i for i, z in zones.items() if z == "us-east-1b"), lost
    lost_manager = next(i for i in lost if i in [x["id"] for x in cloud.instances("manager")])

    # The two managers left hold quorum: the swarm stays writable at once.
    lead = next(m for m in cloud.in_service("manager") if m not in lost)
    wait_for(lambda: cloud.docker(lead, "service", "create", "--detach", "--name", "after", "busybox:local", "sleep",
                                  "1000000").returncode == 0, 60, "a write through the managers left")

    # The health check takes the lost instances through their terminate hooks; the groups
    # launch their replacements in the zones left, and they join.
    wait_for(lambda: not set(lost) & {i["id"] for i in cloud.instances("manager") + cloud.instances("worker")}, 120,
             "the lost instances to be terminated")
    scale_back = lambda: len(cloud.in_service("manager")) == 3 and len(cloud.in_service("worker")) == 3  # noqa: E731
    wait_for(scale_back, 180, "three managers and three workers InService again")
    settle(cloud)
    assert all(cloud.zone_of(i) != "us-east-1b" for i in cloud.in_service("manager") + cloud.in_service("worker"))
    nodes = cloud.nodes()
    assert not [n for n in nodes if n["instance"] in lost], nodes
    assert len([n for n in nodes if n["status"] == "ready"]) == 6 and len(nodes) == 6, nodes
    assert cloud.dns_ips() == manager_ips(cloud)
    assert lost_manager not in [n["instance"] for n in nodes]
    assert len(running_tasks(cloud)) == 3
    # Its lost zone's task moved to a zone left: spread over both again (refilled nodes carry
    # their zone label from the join on).
    zonal = zonal_zones(cloud)
    assert len(zonal) == 3 and sorted(set(zonal)) == ["us-east-1a", "us-east-1c"], zonal
    # The lost worker's termination completed by the function; the manager's held for its record.
    ended = {a["instance_id"]: (a["result"], a["cause"]) for a in cloud.actions() if a["transition"].endswith("TERMINATING")}
    lost_worker = next(i for i in lost if i != lost_manager)
    assert ended[lost_worker] == ("CONTINUE", "complete"), ended
    assert ended[lost_manager][0] == "CONTINUE", ended
