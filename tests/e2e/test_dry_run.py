"""DRY_RUN: "observe, plan and log every action; change nothing" (docs/operate.md). Every fixture in
events/, aimed at the cluster's own instances, is handled by functions deployed in dry run;
nothing changes on any instance, in the swarm, in Route 53 or Parameter Store, nothing is
announced, and only read-only commands run. Afterwards the instances still join."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import ROOT, bin_dir, fixture_event, scale_out, settle
from localcloud.client import wait_for

# The commands a dry run may send: they read the swarm and change nothing (swarm probe's FENCE
# is "-" in a dry run; node-status's REACTIVATE is false; a retirement's preview only reads).
READ_ONLY = {"swarm probe", "list nodes", "node status", "preview"}


def world(lc) -> dict:
    """Everything a function could change: nodes (with their labels), records, parameters,
    each host's /run/lock, the groups' lifecycle states."""
    m = lc.in_service("manager")[0]
    nodes = {}
    for n in lc.nodes():
        r = lc.docker(m, "node", "inspect", n["id"], "--format", "{{json .Spec}}")
        nodes[n["id"]] = (n["status"], n["role"], json.loads(r.stdout))
    ssm = lc.client("ssm")
    params = sorted((p["Name"], p["Version"]) for page in ssm.get_paginator("describe_parameters").paginate()
                    for p in page["Parameters"])
    return {"nodes": nodes, "records": lc.dns_ips(), "params": params, "run_lock": lc.control("run-lock"),
            "groups": lc.state()["groups"]}


def test_every_fixture_in_dry_run_changes_nothing_and_the_instances_still_join(cloud):
    scale_out(cloud, 1, 1)
    m, w = cloud.in_service("manager")[0], cloud.in_service("worker")[0]
    before = world(cloud)
    published = len(cloud.published())
    cloud.deploy(bin_dir(), extra_env={"DRY_RUN": "true"})
    since = time.time()
    fixtures = sorted(p.name for p in Path(ROOT / "events").glob("*.json"))
    invoked = 0
    for name in fixtures:
        target = m if "manager" in name else w
        if "reconcile" in name:
            payload = fixture_event(cloud, name, target)
            if "cluster" in payload:  # the manual invocation names its cluster
                payload = {"cluster": cloud.cluster.name, "dry_run": payload["dry_run"]}
            cloud.reconcile(payload)
            invoked += 1
        else:
            # Through the rules, as EventBridge delivers it (another group's launch matches none).
            invoked += len(cloud.control("events", fixture_event(cloud, name, target))["targets"])
    assert invoked >= len(fixtures) - 3, invoked

    def dry_runs():
        done = [i for i in cloud.control("invocations") if i["started"] >= since]
        return done if len(done) >= invoked else None
    dry = wait_for(dry_runs, 120, "every dry run to finish")
    settle(cloud)
    assert all(i["result"] == "ok" for i in dry), dry
    assert world(cloud) == before
    assert len(cloud.published()) == published, cloud.published()[published:]
    sent = {e["comment"] for e in cloud.timeline() if e["kind"] == "command" and e["ts"] >= since}
    assert sent <= READ_ONLY, sent - READ_ONLY

    # Acting again, the worker that left its swarm meanwhile is joined by the reconcile: no
    # fence stayed behind on it.
    cloud.deploy(bin_dir())
    assert cloud.docker(w, "swarm", "leave", "--force").returncode == 0
    wait_for(lambda: any(n["instance"] == w and n["status"] == "down" for n in cloud.nodes()), 60, "its node down")

    def rejoined():
        cloud.reconcile()
        return any(n["instance"] == w and n["status"] == "ready" for n in cloud.nodes())
    wait_for(rejoined, 90, "the worker joined again")
