"""#30.3: disruption budgets. A service labelled swarm-lifecycle.min-available keeps that many
tasks running while voluntary disruptions (scale-in, refresh, retire) drain its nodes."""
from __future__ import annotations

import threading
import time

from conftest import scale_out, settle
from localcloud.client import wait_for


def running(lc, manager: str, service: str) -> int:
    """Tasks of `service` meant to run that run now (a task with a health check runs once it
    is healthy; one on a drained node is meant to shut down)."""
    r = lc.docker(manager, "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
    return sum(line.startswith("Running") for line in r.stdout.splitlines()) if r.returncode == 0 else -1


def test_three_workers_scaled_in_at_once_keep_a_services_budget(cloud):
    scale_out(cloud, 1, 6)
    m = cloud.in_service("manager")[0]
    # One task per node on three of six workers; its tasks run only once healthy (a few
    # seconds): the three drained together would leave it below two while the moved ones start.
    r = cloud.docker(m, "service", "create", "--detach", "--name", "kept", "--replicas", "3",
                     "--replicas-max-per-node", "1", "--constraint", "node.role==worker",
                     "--label", "swarm-lifecycle.min-available=2",
                     "--health-cmd", "true", "--health-interval", "2s", "--stop-grace-period", "1s",
                     "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    r = cloud.docker(m, "service", "create", "--detach", "--name", "unreadable", "--mode", "global",
                     "--constraint", "node.role==worker", "--label", "swarm-lifecycle.min-available=lots",
                     "--stop-grace-period", "1s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: running(cloud, m, "kept") == 3, 60, "the budgeted service running")
    hosts = cloud.docker(m, "service", "ps", "kept", "--filter", "desired-state=running", "--format", "{{.Node}}").stdout.split()
    by_host = {cloud.state()["hosts"][i]["hostname"]: i for i in cloud.in_service("worker")}
    leaving = {by_host[h] for h in hosts}
    assert len(leaving) == 3, hosts

    samples: list[int] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            n = running(cloud, m, "kept")
            if n >= 0:
                samples.append(n)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for w in leaving:  # a scale-in of exactly these three, at once
        cloud.terminate(w)
    wait_for(lambda: len(cloud.instances("worker")) == 3, 4 * cloud.timing.drain_timeout, "three workers terminated")
    settle(cloud)
    wait_for(lambda: running(cloud, m, "kept") == 3, 30, "the budgeted service back at its count")
    stop.set()
    sampler.join()

    assert len(samples) > 20 and min(samples) >= 2, samples
    assert not leaving & set(cloud.in_service("worker"))
    for w in leaving:
        act = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")][0]
        assert (act["result"], act["cause"]) == ("CONTINUE", "complete"), act
    # The drains were serialized by the budget, never broken by it.
    outcomes = [line.get("outcome") for line in cloud.function_log() if line.get("step") == "drain"]
    assert "budget-wait" in outcomes and "timeout" not in outcomes, outcomes
    assert not cloud.published("Swarm Budget Broken")
    # The unreadable label is named and ignored (told once per retirement that met it).
    invalid = cloud.published("Swarm Budget Invalid")
    assert invalid and all([b["service"] for b in e["detail"]["budgets"]] == ["unreadable"] for e in invalid), invalid
    assert "lots" in invalid[0]["detail"]["budgets"][0]["reason"], invalid


def test_a_spot_interruption_cannot_wait_for_a_budget_and_says_it_broke_it(cloud):
    scale_out(cloud, 1, 2)
    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "kept", "--replicas", "2",
                     "--constraint", "node.role==worker", "--label", "swarm-lifecycle.min-available=2",
                     "--stop-grace-period", "1s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: running(cloud, m, "kept") == 2, 60, "the budgeted service running")
    host = cloud.docker(m, "service", "ps", "kept", "--filter", "desired-state=running", "--format", "{{.Node}}").stdout.split()[0]
    w = next(i for i in cloud.in_service("worker") if cloud.state()["hosts"][i]["hostname"] == host)
    cloud.spot_interrupt(w)
    told = wait_for(lambda: cloud.published("Swarm Budget Broken"), cloud.timing.spot_notice, "the broken budget told")
    d = told[0]["detail"]
    assert d["instanceId"] == w and [b["service"] for b in d["budgets"]] == ["kept"], d
    assert "involuntary" in d["reason"], d
    # The drain did not wait for the budget: the node left before the interruption.
    wait_for(lambda: w not in [n["instance"] for n in cloud.nodes()], cloud.timing.spot_notice, "the node out")
    assert cloud.ec2_state(w) == "running", "done inside the notice"
    lines = cloud.function_log("instance-notice") + cloud.function_log("spot-notice")
    outcomes = [line.get("outcome") for line in lines if line.get("step") == "drain"]
    assert "budget-broken" in outcomes and "budget-wait" not in outcomes, outcomes
