"""Load: N launches at once, then N terminations at once, on a cluster of 3 managers.

Shared by `make bench` (N = 1, 5, 20, with a plot) and the e2e scenario that asserts the
counts (tests/e2e/test_load.py). Counts the lifecycle functions' AWS calls per join and per
termination, the wall time to all InService / all terminated, and how each action ended.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from localcloud.client import LocalCloud, wait_for
from localcloud.iam import FUNCTION_ROLES

# Polls of the wait for an instance's SSM agent (30-90 s on AWS): how many depends on that
# delay, so calls made while the instance was not yet Online are counted apart.
AGENT_WAIT_OPS = ("ssm:DescribeInstanceInformation", "ec2:DescribeInstances")


def _invocations(lc: LocalCloud, function: str, since: float, ids: set[str]) -> list[dict[str, Any]]:
    return [i for i in lc.control("invocations") if i["function"] == lc.fn(function) and i["started"] >= since
            and (i.get("response") or {}).get("instance_id") in ids]


def _calls(lc: LocalCloud, function: str, since: float, until: float) -> list[dict[str, Any]]:
    role = FUNCTION_ROLES[function]
    return [c for c in lc.control("api-calls") if c["caller"] == "function" and c.get("principal") == role
            and since <= c["t"] <= until]


def _cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the machine: /proc/stat's first line."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def scale_out(lc: LocalCloud, n: int, base: int = 0) -> dict[str, Any]:
    """Workers from `base` to `base + n` at once; waits for all to be InService."""
    t0 = time.time()
    cpu0 = _cpu()
    before = {i["id"] for i in lc.instances("worker")}
    lc.scale("worker", base + n)
    wait_for(lambda: len(lc.in_service("worker")) == base + n, 60 + 10 * n, f"{n} workers in service")
    wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "the launch functions to finish")
    t1 = time.time()
    cpu1 = _cpu()
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
    # Where each join's seconds go: agent Online -> its join command starts (the function
    # noticing the agent), the command (on the instance and its confirming manager), the
    # command done -> CONTINUE (the function noticing it: the status polls).
    joins = [e for e in tl if e["kind"] == "command" and e.get("comment") == "swarm join" and e.get("command_id")]
    phases: dict[str, list[float]] = {"before": [], "command": [], "after": []}
    for e in ended:
        own = [c for c in joins if c["instance"] == e["instance"]]
        if e["instance"] not in online or not own:
            continue
        parts = [c for c in joins if c["command_id"] == own[-1]["command_id"]]
        start, end = min(c["ts"] - c["seconds"] for c in parts), max(c["ts"] for c in parts)
        for k, v in (("before", start - online[e["instance"]]), ("command", end - start), ("after", e["ts"] - end)):
            phases[k].append(v)
    first_online = min(online.values()) if online else t0
    # Each join's time from its own agent Online to its CONTINUE.
    after_agent = sorted(e["ts"] - online[e["instance"]] for e in ended if e["instance"] in online)
    return {
        "n": n,
        "calls_per_join": round(len(calls) / n, 1),
        "calls_per_join_after_agent": round(len(after) / n, 1),
        "by_op": dict(Counter(f"{c['service']}:{c['op']}" for c in after)),
        # From the first agent Online to the last CONTINUE.
        "all_in_service_s": round(max(e["ts"] for e in ended) - first_online, 1) if ended else None,
        "join_s_median": round(statistics.median(after_agent), 1) if after_agent else None,
        "join_s_max": round(after_agent[-1], 1) if after_agent else None,
        "join_phases_median_s": {k: round(statistics.median(v), 1) for k, v in phases.items() if v},
        # How busy the machine's cores were meanwhile (every host and the cloud share them).
        "cpu_busy": round((cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1]), 2),
        "released": dict(Counter(f"{e['result']} by {e['cause']}" for e in ended)),
        "over_polled": over_polled(tl, calls),
        "overlapping_joins": overlapping_joins(tl, new),
    }


# The SSM adapter's poll schedule (crates/swarm-aws/src/ssm.rs): the first poll no sooner than
# FIRST_POLL, each wait doubling up to MAX_POLL, every wait jittered by +-20 %, one more poll
# right after the command's timeout kills it, and an output that may be cut read once more.
FIRST_POLL, MAX_POLL, JITTER_LOW = 0.8, 8.0, 0.8


def polls_allowed(seconds: float) -> int:
    """The most status polls the schedule makes for a command whose results took `seconds`
    from its SendCommand: the polls that can come before then (at the shortest jitter), the
    one that sees it done, the kill poll and one output read. It follows the command's length,
    so it holds on a slow machine as on a fast one."""
    n, t, delay = 0, 0.0, FIRST_POLL
    while True:
        t += delay * JITTER_LOW
        n += 1
        if t >= seconds:
            return n + 2
        delay = min(delay * 2, MAX_POLL)


def over_polled(tl: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commands among `calls`' status polls that were polled more than their length allows
    (their lengths from the timeline `tl`)."""
    spans: dict[str, tuple[float, float]] = {}
    for e in tl:
        if e["kind"] == "command" and e.get("command_id") and e.get("requested"):
            sent, done = spans.get(e["command_id"], (e["requested"], e["ts"]))
            spans[e["command_id"]] = (min(sent, e["requested"]), max(done, e["ts"]))
    polls = Counter(c["command_id"] for c in calls if c.get("command_id")
                    and c["op"] in ("ListCommandInvocations", "GetCommandInvocation"))
    # A command is seen done one round trip after its last invocation ends: 1 s of slack. One
    # that never ran anywhere (refused, undeliverable) has no length to bound.
    return [{"command_id": k, "polls": n, "seconds": round(spans[k][1] - spans[k][0], 1)}
            for k, n in polls.items() if k in spans and n > polls_allowed(spans[k][1] - spans[k][0] + 1)]


def overlapping_joins(tl: list[dict[str, Any]], ids: set[str]) -> list[tuple[str, str, str]]:
    """(instance, command, command) for every join sent to an instance of `ids` while another of
    its join commands was still running there (from the timeline `tl`)."""
    runs: dict[str, list[tuple[float, float, str]]] = {}
    for e in tl:
        if e["kind"] == "command" and e.get("comment") == "swarm join" and e.get("instance") in ids:
            runs.setdefault(e["instance"], []).append((e["requested"], e["ts"], e["command_id"]))
    out = []
    for i, rs in runs.items():
        rs.sort()
        out += [(i, a[2], b[2]) for a, b in zip(rs, rs[1:], strict=False) if b[0] < a[1]]
    return out


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
        "over_polled": over_polled(tl, calls),
        "leaving": sorted(leaving),
    }


def run(bin_dir, sizes=(1, 5, 20)) -> list[dict[str, Any]]:
    """`make bench`: for each N, a fresh cloud with 3 managers; N workers launched at once, an
    N-replica service, then the N workers terminated at once (the tasks move to the managers)."""
    from localcloud.client import Timing

    return [measure(n, bin_dir, Timing()) for n in sizes]


def measure(n: int, bin_dir, timing) -> dict[str, Any]:
    """One N on a fresh cloud: the scale-out, the service, the scale-in."""
    lc = LocalCloud.start(timing)
    try:
        lc.create_cluster(name="load")
        lc.deploy(bin_dir)
        lc.scale("manager", 3)
        wait_for(lambda: len(lc.in_service("manager")) == 3, 240, "3 managers")
        wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "settle")
        out = scale_out(lc, n)
        m0 = lc.in_service("manager")[0]
        lc.docker(m0, "service", "create", "--detach", "--name", "web", "--replicas", str(n),
                  "--stop-grace-period", "2s", "busybox:local", "sleep", "1000000")
        wait_for(lambda: lc.docker(m0, "service", "ls", "--format", "{{.Replicas}}").stdout.strip() == f"{n}/{n}",
                 120, "the service running")
        inn = scale_in(lc, 0)
        inn.pop("leaving")
        return {"n": n, "launch": out, "terminate": inn}
    finally:
        lc.stop()


def from_empty(bin_dir, timing, managers: int = 3, workers: int = 20) -> dict[str, Any]:
    """A cluster created at full size: `managers` + `workers` launched at once into an empty
    cluster. Counts the init and join commands (target: one per instance), the commands that
    failed, and the launch functions' calls."""
    lc = LocalCloud.start(timing)
    try:
        lc.create_cluster(name="empty")
        lc.deploy(bin_dir)
        t0 = time.time()
        lc.scale("manager", managers)
        lc.scale("worker", workers)
        total = managers + workers
        wait_for(lambda: len(lc.in_service("manager")) + len(lc.in_service("worker")) == total,
                 120 + 10 * total, "every instance in service")
        wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "settle")
        tl = lc.timeline()
        ours = {i["id"] for role in ("manager", "worker") for i in lc.instances(role)}
        # One command id per join (its confirming manager's half shares it) or init.
        sent = {e.get("command_id") for e in tl if e["kind"] == "command" and e.get("instance") in ours
                and e.get("comment") in ("swarm join", "swarm init")}
        failed = Counter(e.get("comment") for e in tl if e["kind"] == "command" and e.get("status") != "Success")
        calls = _calls(lc, "launch-hook", t0, time.time())
        ended = [e for e in tl if e["kind"] == "action-ended" and e["transition"] == "launch"]
        return {
            "instances": total,
            "join_and_init_commands": len(sent),
            "failed_commands": dict(failed),
            "calls_per_instance": round(len(calls) / total, 1),
            "by_op": dict(Counter(f"{c['service']}:{c['op']}" for c in calls)),
            "all_in_service_s": round(max(e["ts"] for e in ended) - t0, 1) if ended else None,
            "released": dict(Counter(f"{e['result']} by {e['cause']}" for e in ended)),
        }
    finally:
        lc.stop()


def svg(rows: list[dict[str, Any]]) -> str:
    """Two small charts against N: AWS calls per join / per termination, and seconds (slowest
    join after its agent, all terminated)."""
    ns = [r["n"] for r in rows]
    panels = [
        ("AWS calls per event", [("per join (after the agent)", "#1f77b4", [r["launch"]["calls_per_join_after_agent"] for r in rows]),
                                 ("per termination", "#d62728", [r["terminate"]["calls_per_termination"] for r in rows])]),
        ("seconds", [("slowest join after its agent", "#1f77b4", [r["launch"]["join_s_max"] or 0 for r in rows]),
                     ("all terminated", "#d62728", [r["terminate"]["all_terminated_s"] or 0 for r in rows])]),
    ]
    w, h, pad = 360, 240, 44
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h}" font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>']
    for k, (title, series) in enumerate(panels):
        out += panel(k * w, w, h, pad, title, series, ns)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def panel(x0: float, w: int, h: int, pad: int, title: str, series, ns: list[int]) -> list[str]:
    """One chart of the SVG: its axes, N on x, one polyline per series."""
    out = []
    xmax = max(ns)
    ymax = max(max(v) for _, _, v in series) * 1.15 or 1
    px = lambda n: x0 + pad + (w - 2 * pad) * n / xmax  # noqa: E731
    py = lambda v: h - pad - (h - 2 * pad) * v / ymax  # noqa: E731
    out.append(f'<text x="{x0 + w / 2}" y="16" text-anchor="middle" font-weight="bold">{title} against N at once</text>')
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="#333"/>')
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(ymax)}" stroke="#333"/>')
    for n in ns:
        out.append(f'<text x="{px(n)}" y="{py(0) + 14}" text-anchor="middle">{n}</text>')
    for frac in (0.5, 1.0):
        v = ymax / 1.15 * frac
        out.append(f'<text x="{px(0) - 4}" y="{py(v) + 4}" text-anchor="end">{v:.0f}</text>')
    for j, (label, colour, vals) in enumerate(series):
        pts = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in zip(ns, vals, strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for n, v in zip(ns, vals, strict=True):
            out.append(f'<circle cx="{px(n):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>'
                       f'<text x="{px(n) + 4:.1f}" y="{py(v) - 5:.1f}">{v}</text>')
        out.append(f'<text x="{x0 + pad + 8}" y="{30 + 13 * j}" fill="{colour}">— {label}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{h - 8}" text-anchor="middle">N (workers launched / terminated at once; 3 managers)</text>')

    return out
