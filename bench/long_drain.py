"""A long drain's bill (issue #30.4: billed seconds flat in the drain's length, ≤ 10 s for a
10-minute drain): a worker whose task takes LENGTH seconds to stop (busybox's sleep as PID 1
ignores SIGTERM: the stop grace period runs out) is terminated under a 180 s terminate hook (the
template's default TTL + HoldExtra), and the terminate and drain-check invocations are summed.

`make bench` runs it with a 10-minute drain; alone: `python -m bench.long_drain [SECONDS] [BIN_DIR]`
(billed time depends little on the build profile: the functions wait on AWS).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from localcloud.client import LocalCloud, Timing, wait_for


def run(bin_dir: Path, length: int = 600) -> dict[str, Any]:
    # A 180 s hook as on AWS by default: the checks come every period, not every second.
    lc = LocalCloud.start(Timing(hold_extra=175, drain_timeout=length + 300))
    try:
        lc.create_cluster(name="bench")
        lc.deploy(bin_dir)
        lc.scale("manager", 1)
        lc.scale("worker", 1)
        wait_for(lambda: len(lc.in_service("manager")) == 1 and len(lc.in_service("worker")) == 1, 240, "the nodes")
        wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "settle")
        m, w = lc.in_service("manager")[0], lc.in_service("worker")[0]
        r = lc.docker(m, "service", "create", "--detach", "--name", "slowstop", "--mode", "global",
                      "--stop-grace-period", f"{length}s", "busybox:local", "sleep", "1000000")
        assert r.returncode == 0, r.stderr
        host = lc.state()["hosts"][w]["hostname"]
        wait_for(lambda: f"{host} Running" in lc.docker(m, "service", "ps", "slowstop", "--filter", "desired-state=running",
                                                       "--format", "{{.Node}} {{.CurrentState}}").stdout, 60, "the task")
        before = len(lc.control("invocations"))
        t0 = time.time()
        lc.terminate(w)
        wait_for(lambda: w not in [i["id"] for i in lc.instances("worker")], length + 600, "the worker terminated")
        wait_for(lambda: lc.idle(), 120, "settle")
        act = [a for a in lc.actions(w) if a["transition"].endswith("TERMINATING")][0]
        invs = [i for i in lc.control("invocations")[before:]
                if lc.short(i["function"]) in ("terminate-hook", "drain-check")]
        by_fn = Counter(lc.short(i["function"]) for i in invs)
        billed = {f: round(sum(i["duration_ms"] for i in invs if lc.short(i["function"]) == f) / 1000, 1) for f in by_fn}
        calls = [c for c in lc.control("api-calls") if c["caller"] == "function" and t0 <= c["t"]]
        return {
            "drain_seconds": length,
            "took_seconds": round(act["ended"] - t0, 1),
            "cause": act["cause"],
            "invocations": dict(by_fn),
            "billed_seconds": billed,
            "billed_total": round(sum(billed.values()), 1),
            "heartbeats": len(act["heartbeats"]),
            "calls": len(calls),
            "by_op": dict(Counter(c["op"] for c in calls)),
        }
    finally:
        lc.stop()


if __name__ == "__main__":
    import os

    root = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    length = int(sys.argv[1]) if sys.argv[1:] else 600
    print(json.dumps(run(Path(sys.argv[2]) if sys.argv[2:] else target / "debug", length), indent=2))
