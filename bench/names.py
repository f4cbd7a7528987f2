"""Service names: the reconcile's AWS calls with 0, 10 and 100 labelled services (issue #32:
flat in the number of unchanged services — the names are read in one listing and the services
in one command, and nothing is written when nothing changed).

`make bench` runs it; alone: `python -m bench.names [BIN_DIR]` (the calls do not depend on the
build profile, so the debug binaries answer the question too).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from localcloud.client import LocalCloud, Timing, wait_for

from .load import _calls

SUFFIX = "apps.bench.swarm.internal"


def _reconcile(lc: LocalCloud) -> dict[str, Any]:
    t0 = time.time()
    lc.reconcile()
    calls = _calls(lc, "reconcile", t0, time.time())
    return {"calls": len(calls), "by_op": dict(Counter(f"{c['service']}:{c['op']}" for c in calls))}


def run(bin_dir: Path, sizes: tuple[int, ...] = (0, 10, 100)) -> list[dict[str, Any]]:
    """One cloud, a manager and two workers; for each size, the services added (each published
    through the mesh with its own name), then a reconcile that writes the new names and one
    that finds them converged."""
    lc = LocalCloud.start(Timing())
    try:
        lc.create_cluster(name="bench", params={"ServiceRecordSuffix": SUFFIX})
        lc.deploy(bin_dir)
        lc.scale("manager", 1)
        lc.scale("worker", 2)
        wait_for(lambda: len(lc.in_service("manager")) == 1 and len(lc.in_service("worker")) == 2, 240, "the nodes")
        wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), 120, "settle")
        m = lc.in_service("manager")[0]
        rows, have = [], 0
        for n in sizes:
            for k in range(have, n):
                r = lc.docker(m, "service", "create", "--detach", "--name", f"s{k}", "--replicas", "0",
                              "--label", f"swarm-lifecycle.dns-name=s{k}.{SUFFIX}", "--publish", f"{20000 + k}:80",
                              "busybox:local", "sleep", "1000000")
                assert r.returncode == 0, r.stderr
            have = n
            first, again = _reconcile(lc), _reconcile(lc)
            rows.append({"services": n, "first": first, "converged": again})
        return rows
    finally:
        lc.stop()


if __name__ == "__main__":
    import os

    root = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    print(json.dumps(run(Path(sys.argv[1]) if sys.argv[1:] else target / "debug"), indent=2))
