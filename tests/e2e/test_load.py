"""Issue #15: cost that stays flat under load. 20 launches at once cost about what one does,
and 15 terminations at once are each completed by the function (none released by the hook's
timeout) with their tasks moved first. Counts only: the timings are in BENCH.md."""

from __future__ import annotations

from bench.load import scale_in, scale_out
from conftest import scale_out as scale_cluster
from conftest import settle
from localcloud.client import wait_for
from test_lifecycle import running_tasks


def test_twenty_launches_cost_what_one_does_and_fifteen_terminations_finish_before_their_hook(cloud):
    scale_cluster(cloud, 3, 0)
    alone = scale_out(cloud, 1)
    assert alone["calls_per_join_after_agent"] <= 8, alone
    scale_in(cloud, 0)

    many = scale_out(cloud, 20)
    print("20 launches:", many)
    assert many["released"] == {"CONTINUE by complete": 20}, many
    assert many["calls_per_join_after_agent"] <= 10, many
    # One command per join; a few more when an agent was not registered yet (SendCommand
    # refused with InvalidInstanceId, sent again to the managers that answer) — not one per retry.
    assert many["by_op"].get("ssm:SendCommand", 0) <= 25, "no join sent again while its command runs: " + str(many)

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
