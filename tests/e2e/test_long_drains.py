"""#30.4: drains as long as the services need. A drain that outlasts its first command is handed
to the drain-check function through the DrainChecks queue (delayed messages): no invocation
waits for the drain, each check re-arms the action, and the last one retires the node."""

from __future__ import annotations

import time

import pytest

from conftest import announced_once, bin_dir, scale_out, settle
from localcloud.client import wait_for

GRACE = 40  # seconds the service's task takes to stop: busybox's sleep as PID 1 ignores SIGTERM


@pytest.mark.timing(drain_timeout=150)
def test_a_drain_longer_than_the_functions_timeout_finishes_kept_alive_by_its_checks(cloud):
    scale_out(cloud, 1, 2)
    # The functions' Timeout shortened below the drain (and the hook's heartbeat timeout is 10 s):
    # the drain outlives any one invocation and any one heartbeat.
    timeout = 15
    cloud.deploy(bin_dir(), timeout=timeout)
    m = cloud.in_service("manager")[0]
    w = cloud.in_service("worker")[0]
    host = cloud.state()["hosts"][w]["hostname"]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "slowstop", "--mode", "global",
                     "--stop-grace-period", f"{GRACE}s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr

    def running_on_worker() -> bool:
        out = cloud.docker(m, "service", "ps", "slowstop", "--filter", "desired-state=running",
                           "--format", "{{.Node}} {{.CurrentState}}").stdout
        return f"{host} Running" in out

    wait_for(running_on_worker, 60, "the slow-stopping task running on the worker")
    before = len(cloud.control("invocations"))
    cloud.terminate(w)
    t0 = time.time()
    wait_for(lambda: w not in [i["id"] for i in cloud.instances("worker")], 2 * cloud.timing.drain_timeout,
             "the worker terminated")
    settle(cloud)
    act = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")][0]
    # Completed by the drain-check function once the task had stopped: never released by the
    # hook's timeout although the drain outlasted it four times.
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete"), act
    took = act["ended"] - t0
    assert GRACE - 5 <= took < cloud.timing.drain_timeout, took
    beats = [t0] + sorted(act["heartbeats"]) + [act["ended"]]
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert max(gaps) < act["heartbeat_timeout"], gaps
    assert not cloud.published("Swarm Drain Timed Out")
    announced_once(cloud, "Swarm Node Retired", [w], role="worker", outcome="retired")
    assert w not in [n["instance"] for n in cloud.nodes()], "node removed"
    # No invocation ran past its Timeout; the drain was checked by several short invocations.
    invs = [i for i in cloud.control("invocations")[before:]
            if i["function"] in (cloud.fn("terminate-hook"), cloud.fn("drain-check"))]
    assert all(i["result"] == "ok" for i in invs), [(i["function"], i["result"]) for i in invs]
    hook = [i for i in invs if i["function"] == cloud.fn("terminate-hook")]
    checks = [i for i in invs if i["function"] == cloud.fn("drain-check")]
    assert max(i["duration_ms"] for i in hook) < timeout * 1000, hook
    assert len(checks) >= 3 and max(i["duration_ms"] for i in checks) < 60_000, checks
    # What the drain billed, all invocations together, against the drain's length.
    billed = sum(i["duration_ms"] for i in invs) / 1000
    assert billed < took, (billed, took)
    assert cloud.drain_checks_failed() == 0
