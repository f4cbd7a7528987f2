"""`make demo`: a 5-node swarm formed, used and shrunk by the real lifecycle function.

Scale out from empty to 3 managers + 2 workers, deploy a replicated service, terminate a
worker, terminate a manager; print the timeline, `docker node ls`, where the tasks run, the
Route 53 manager record and `swarm-lifecycle status`, and write the timeline as a picture
(`--svg`, default demo-timeline.svg). Everything is torn down at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from .client import ROOT, LocalCloud, Timing, wait_for
from .timeline_svg import render

SKIP_KINDS = {"lambda-init", "lambda-ready", "invoke", "faults-set"}


def fmt_cloud(e: dict) -> str | None:
    k = e["kind"]
    i = e.get("instance", "")
    if k in SKIP_KINDS:
        return None
    if k == "cloud-up":
        return f"cloud       local cloud listening on port {e['port']}"
    if k == "instance-launched":
        return f"autoscaling {i} launched in {e['group']} ({e['ip']})"
    if k == "hook-wait":
        state = "Pending" if e["transition"] == "launch" else "Terminating"
        return f"autoscaling {i} {state}:Wait (heartbeat timeout {e['heartbeat_timeout']:.0f}s)"
    if k == "event":
        return f"eventbridge {e['detail_type']} {i or ''} -> {', '.join(e['targets']) or 'no target'}"
    if k == "host-ready":
        return f"ec2         {i} host up: netns + dockerd at {e['ip']}"
    if k == "command":
        return f"ssm         {i} {e['comment']}: {e['status']} (exit {e['code']}, {e['seconds']}s)"
    if k == "dns-change":
        ch = ", ".join(f"{c['action']} {c['set']} {'/'.join(c['ips'])}" for c in e["changes"])
        return f"route53     {ch} (INSYNC at +{e['insync_at']:.1f}s)"
    if k == "heartbeat":
        return f"autoscaling {i} heartbeat: release at +{e['release_at']:.1f}s"
    if k == "action-ended":
        return f"autoscaling {i} {e['transition']} action {e['result']} by {e['cause']} after {e['waited']:.1f}s"
    if k == "instance-terminated":
        return f"autoscaling {i} terminated"
    if k == "invoke-end":
        r = e.get("response") or {}
        return (f"lambda      {e['function']} {r.get('instance_id', '')} {e['result']}: "
                f"{r.get('outcome', '')} {r.get('detail', '')} ({e['duration_ms']:.0f} ms)")
    return f"{k:<11} " + " ".join(f"{a}={b}" for a, b in e.items() if a not in ("t", "ts", "kind"))


def fmt_log(line: dict) -> str | None:
    step, outcome = line.get("step"), line.get("outcome")
    if not step or not outcome or step == "start":
        return None
    span = line.get("span") or {}
    extra = line.get("reason") or line.get("decision") or line.get("note") or line.get("error") or ""
    return f"function    {span.get('instance_id', '')} {step}: {outcome} {extra}".rstrip()


def timeline(lc: LocalCloud) -> list[str]:
    events = lc.timeline()
    t0 = events[0]["ts"] if events else time.time()
    rows = []
    for e in events:
        s = fmt_cloud(e)
        if s:
            rows.append((e["ts"], s))
    for line in lc.function_log():
        s = fmt_log(line)
        if s and "timestamp" in line:
            ts = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
            rows.append((ts, s))
    rows.sort(key=lambda r: r[0])
    return [f"{ts - t0:+7.1f}s  {s}" for ts, s in rows]


def operator_status(lc: LocalCloud, bin_dir: Path) -> str:
    """What the operator's command says of the cluster now (as the stack's OperatorRole)."""
    r = subprocess.run([str(bin_dir / "swarm-lifecycle"), "status"], env=lc.operator_env(), capture_output=True,
                       text=True, timeout=120)
    return r.stdout if r.returncode == 0 else f"(status failed: {r.stderr.strip()})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bin-dir", type=Path, default=Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug")
    p.add_argument("--managers", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--svg", type=Path, default=Path("demo-timeline.svg"), help="where the timeline picture goes")
    a = p.parse_args()
    started = time.time()
    lc = LocalCloud.start(Timing())
    try:
        print(f"local cloud at {lc.endpoint}; state in {lc.state_dir}")
        c = lc.create_cluster()
        lc.deploy(a.bin_dir)
        print(f"cluster {c.name}: groups {c.manager_group} / {c.worker_group}, record {c.dns_name}")
        print(f"scaling out to {a.managers} managers + {a.workers} workers ...")
        lc.scale("manager", a.managers)
        lc.scale("worker", a.workers)
        wait_for(lambda: len(lc.in_service("manager")) == a.managers and len(lc.in_service("worker")) == a.workers,
                 240, "the swarm to form")
        m = lc.in_service("manager")[0]
        r = lc.docker(m, "service", "create", "--detach", "--name", "web", "--replicas", "4", "--stop-grace-period", "2s",
                      "busybox:local", "sleep", "1000000")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        wait_for(lambda: lc.docker(m, "service", "ls", "--format", "{{.Replicas}}").stdout.strip() == "4/4", 60, "web 4/4")
        worker = lc.in_service("worker")[0]
        print(f"terminating worker {worker} ...")
        lc.terminate(worker)
        wait_for(lambda: worker not in [i["id"] for i in lc.instances("worker")], 120, "the worker to go")
        manager = lc.in_service("manager")[-1]
        print(f"terminating manager {manager} ...")
        lc.terminate(manager)
        wait_for(lambda: manager not in [i["id"] for i in lc.instances("manager")], 120, "the manager to go")
        wait_for(lambda: lc.idle(), 60, "the function to finish")
        print("\n== timeline")
        print("\n".join(timeline(lc)))
        m = lc.in_service("manager")[0]
        print("\n== docker node ls")
        print(lc.docker(m, "node", "ls").stdout.rstrip())
        print("\n== docker service ps web (running)")
        print(lc.docker(m, "service", "ps", "web", "--filter", "desired-state=running").stdout.rstrip())
        print(f"\n== Route 53 {c.dns_name}")
        print(", ".join(lc.dns_ips()))
        print("\n== swarm-lifecycle status")
        print(operator_status(lc, a.bin_dir).rstrip())
        a.svg.write_text(render(lc.timeline(), f"swarm-lifecycle demo: cluster {c.name}"))
        print(f"\ntimeline picture: {a.svg}")
        print(f"\ndemo finished in {time.time() - started:.0f}s")
        return 0
    except KeyboardInterrupt:
        print("interrupted: tearing down")
        return 130
    finally:
        left = lc.stop()
        print("torn down: no namespace, daemon or mount left" if not left else f"teardown left (now removed): {left}")


if __name__ == "__main__":
    sys.exit(main())
