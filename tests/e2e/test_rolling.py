"""Issue #17: a launch template change (new AMI) rolls the managers through the hooks, as the
template's UpdatePolicy asks CloudFormation to: one at a time, each replacement Ready before an
old manager goes, the swarm writable throughout."""

from __future__ import annotations

from conftest import scale_out, settle
from localcloud.client import wait_for


def group_phase(lc) -> tuple:
    """The manager group's instances and lifecycle states: a new phase of the roll when it changes."""
    return tuple(sorted((i["id"], i["lifecycle"]) for i in lc.instances("manager")))


def in_service_when_each_manager_left(lc) -> list[int]:
    """From the cloud's timeline, in order: how many managers were InService (the leaving one
    included) at the moment each manager entered its terminate hook."""
    group = lc.cluster.manager_group
    managers, in_service, counts = set(), set(), []
    for e in lc.timeline():
        if e["kind"] == "instance-launched" and e["group"] == group:
            managers.add(e["instance"])
        elif e["kind"] == "action-ended" and e["instance"] in managers and e["transition"] == "launch" and e["result"] == "CONTINUE":
            in_service.add(e["instance"])
        elif e["kind"] == "instance-terminating" and e["group"] == group:
            counts.append(len(in_service))
            in_service.discard(e["instance"])
    return counts


def test_a_new_image_replaces_every_manager_one_at_a_time_with_the_swarm_writable(cloud):
    scale_out(cloud, 3, 1)
    old = set(cloud.in_service("manager"))
    images = [i["ImageId"] for i in cloud.client("ec2").describe_images()["Images"]]
    rid = cloud.roll("manager", ImageId=images[1])

    def rolling() -> bool:
        return cloud.refresh("manager", rid)["Status"] in ("Pending", "InProgress")

    services = 0
    while True:
        phase = group_phase(cloud)
        states = [s for _, s in phase]
        # Never more than one manager out: at most one leaving, at most one more than three in the group.
        assert sum(s.startswith("Terminating") for s in states) <= 1 and len(states) <= 4, phase
        # Every Ready manager of the three is still there until its replacement is.
        ready = [n for n in cloud.nodes() if n["role"] == "manager" and n["status"] == "ready"]
        assert len(ready) >= 3, (phase, ready)
        # The swarm takes writes through a manager in service, in every phase of the roll.
        via = cloud.in_service("manager")[-1]
        r = cloud.docker(via, "service", "create", "--detach", "--name", f"during-{services}", "busybox:local", "sleep", "1000000")
        assert r.returncode == 0, (phase, r.stderr)
        services += 1
        if not rolling():
            break
        wait_for(lambda phase=phase: group_phase(cloud) != phase or not rolling(), 300, "the roll's next phase")
    assert cloud.refresh("manager", rid)["Status"] == "Successful", cloud.refresh("manager", rid)
    settle(cloud)
    new = set(cloud.in_service("manager"))
    assert len(new) == 3 and not new & old, (old, new)
    nodes = cloud.nodes()
    assert sorted(n["instance"] for n in nodes if n["role"] == "manager" and n["status"] == "ready") == sorted(new), nodes
    assert len([n for n in nodes if n["role"] == "worker" and n["status"] == "ready"]) == 1, nodes
    assert not {n["instance"] for n in nodes} & old, "a replaced manager's node stayed in the swarm"
    hosts = cloud.state()["hosts"]
    assert cloud.dns_ips() == sorted(hosts[i]["ip"] for i in new)
    # Launch before terminating: each old manager entered its hook with its replacement already
    # in service (four InService), never leaving fewer than three behind.
    assert in_service_when_each_manager_left(cloud) == [4, 4, 4]
    r = cloud.docker(sorted(new)[0], "service", "ls", "-q")
    assert len(r.stdout.split()) == services, r.stdout
