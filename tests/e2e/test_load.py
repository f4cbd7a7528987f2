"""Cost that stays flat under load: 20 launches at once are each joined by one join command
and polled no more than the poll schedule allows for the command's length, and 15 terminations
at once are each completed by the function (none released by the hook's timeout) with their
tasks moved first. Only what does not follow the machine's speed is asserted: calls per join
and the timings are in BENCH.md (make bench)."""

from __future__ import annotations

import pytest

from bench.load import scale_in, scale_out
from conftest import scale_out as scale_cluster
from conftest import settle
from localcloud.client import wait_for
from test_lifecycle import running_tasks


# 23 hosts on two cores: a scenario beside it missed its 30 s Spot notice (session 18's CI).
@pytest.mark.alone
def test_twenty_launches_cost_what_one_does_and_fifteen_terminations_finish_before_their_hook(cloud):
    scale_cluster(cloud, 3, 0)
    alone = scale_out(cloud, 1)
    assert alone["released"] == {"CONTINUE by complete": 1}, alone
    assert alone["over_polled"] == [] and alone["overlapping_joins"] == [], alone
    scale_in(cloud, 0)

    many = scale_out(cloud, 20)
    print("20 launches:", many)
    assert many["released"] == {"CONTINUE by complete": 20}, many
    # Each command polled as the schedule allows for its length, however long it ran.
    assert many["over_polled"] == [], many
    # A join is never sent again to an instance while its join command still runs there.
    assert many["overlapping_joins"] == [], many

    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "web", "--replicas", "20",
                     "--constraint", "node.role==worker", "--stop-grace-period", "2s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(running_tasks(cloud)) == 20, 120, "20 tasks running")

    out = scale_in(cloud, 5)
    settle(cloud)
    print("15 terminations:", {k: v for k, v in out.items() if k != "leaving"})
    assert out["n"] == 15, out
    # Every action completed by the function, none let go by the hook's timeout mid-drain.
    assert out["released"] == {"CONTINUE by complete": 15}, out
    assert out["over_polled"] == [], out
    log = cloud.function_log()
    for gone in out["leaving"]:
        steps = [(line.get("step"), line.get("outcome")) for line in log
                 if (line.get("span") or {}).get("instance_id") == gone and line.get("step") in ("drain", "leave")]
        # Its tasks moved (drain ok, in time), and the instance left the swarm by itself: its
        # half of the command leaves only once no task runs there (retire-node.sh, exit 5).
        assert ("drain", "ok") in steps and ("drain", "timeout") not in steps, (gone, steps)
        assert ("leave", "ok") in steps, (gone, steps)
    # The tasks run on the 5 workers left.
    wait_for(lambda: len(running_tasks(cloud)) == 20, 120, "20 tasks running on the workers left")
    left = {n["hostname"] for n in cloud.nodes() if n["role"] == "worker"}
    assert set(running_tasks(cloud)) <= left
