"""Load: N launches at once, then N terminations at once, on a cluster of 3 managers.

Shared by `make bench` (N = 1, 5, 20, with a plot) and the e2e scenario that asserts the
counts (tests/e2e/test_load.py). Counts the lifecycle functions' AWS calls per join and per
termination, the wall time to all InService / all terminated, and how each action ended.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from localcloud.client import LocalCloud, wait_for
from localcloud.iam import FUNCTION_ROLES

# Polls of the wait for an instance's SSM agent (30-90 s on AWS): how many depends on that
# delay, so calls made while the instance was not yet Online are counted apart.
AGENT_WAIT_OPS = ("ssm:DescribeInstanceInformation", "ec2:DescribeInstances")


def _invocations(lc: LocalCloud, function: str, since: float, ids: set[str]) -> list[dict[str, Any]]:
    return [i for i in lc.control("invocations") if i["function"] == lc.prefix + function and i["started"] >= since
            and (i.get("response") or {}).get("instance_id") in ids]


def _calls(lc: LocalCloud, function: str, since: float, until: float) -> list[dict[str, Any]]:
    role = FUNCTION_ROLES[function]
    return [c for c in lc.control("api-calls") if c["caller"] == "function" and c.get("principal") == role
            and since <= c["t"] <= until]


def scale_out(lc: LocalCloud, n: int, base: int = 0) -> dict[str, Any]:
    """Workers from `base` to `base + n` at once; waits for all to be InService."""
    t0 = time.time()
    before = {i["id"] for i in lc.instances("worker")}
    lc.scale("worker", base + n)
    wait_for(lambda: len(lc.in_service("worker")) == base + n, 60 + 10 * n, f"{n} workers in service")
    wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "the launch functions to finish")
    t1 = time.time()
    new = {i for i in lc.in_service("worker") if i not in before}
    tl = lc.timeline()
    online = {e["instance"]: e["ts"] + lc.timing.agent_delay for e in tl
              if e["kind"] == "host-ready" and e.get("instance") in new}
    ended = [e for e in tl if e["kind"] == "action-ended" and e.get("instance") in new and e["transition"] == "launch"]
    invs = _invocations(lc, "launch-hook", t0, new)
    calls = _calls(lc, "launch-hook", t0, t1)

    def waiting(c: dict[str, Any]) -> bool:
        # A wait poll: some invocation running then had an instance whose agent was not Online.
        return f"{c['service']}:{c['op']}" in AGENT_WAIT_OPS and any(
            i["started"] <= c["t"] <= i["started"] + i["duration_ms"] / 1000
            and online.get(i["response"]["instance_id"], 0) > c["t"] for i in invs)

    after = [c for c in calls if not waiting(c)]
    first_online = min(online.values()) if online else t0
    return {
        "n": n,
        "calls_per_join": round(len(calls) / n, 1),
        "calls_per_join_after_agent": round(len(after) / n, 1),
        "by_op": dict(Counter(f"{c['service']}:{c['op']}" for c in after)),
        # From the first agent Online to the last CONTINUE.
        "all_in_service_s": round(max(e["ts"] for e in ended) - first_online, 1) if ended else None,
        "released": dict(Counter(f"{e['result']} by {e['cause']}" for e in ended)),
    }


def scale_in(lc: LocalCloud, to: int) -> dict[str, Any]:
    """Workers down to `to` at once; waits for the leavers to be gone."""
    t0 = time.time()
    leaving = {i["id"] for i in lc.instances("worker")}
    lc.scale("worker", to)
    wait_for(lambda: len(lc.instances("worker")) == to, 300, f"{to} workers left")
    wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "the terminate functions to finish")
    t1 = time.time()
    leaving -= {i["id"] for i in lc.instances("worker")}
    n = len(leaving)
    tl = lc.timeline()
    ended = [e for e in tl if e["kind"] == "action-ended" and e.get("instance") in leaving and e["transition"] == "terminate"]
    calls = _calls(lc, "terminate-hook", t0, t1)
    return {
        "n": n,
        "calls_per_termination": round(len(calls) / n, 1),
        "by_op": dict(Counter(f"{c['service']}:{c['op']}" for c in calls)),
        "all_terminated_s": round(max(e["ts"] for e in ended) - t0, 1) if ended else None,
        "released": dict(Counter(f"{e['result']} by {e['cause']}" for e in ended)),
        "leaving": sorted(leaving),
    }
