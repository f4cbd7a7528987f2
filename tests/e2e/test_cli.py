"""Issue #16: the operator's command (`swarm-lifecycle`, built by `make build`) against the
live local cloud, with an operator's own credentials and the local cloud's endpoint."""

from __future__ import annotations

import json
import subprocess
import uuid

from conftest import bin_dir, killed_with_its_events_lost, scale_out, settle
from localcloud.client import wait_for
from test_lifecycle import create_service, running_tasks


def cli(lc, *args: str) -> subprocess.CompletedProcess:
    # As the template's OperatorRole: every call the command makes must be one it grants (the
    # cloud's teardown fails on a denial).
    return subprocess.run([str(bin_dir() / "swarm-lifecycle"), *args], env=lc.operator_env(), capture_output=True,
                          text=True, timeout=300)


def watched_frames(lc, frames: int) -> list[str]:
    """`status --watch 1` until it has shown `frames` frames (then interrupted)."""
    w = subprocess.Popen([str(bin_dir() / "swarm-lifecycle"), "status", "--watch", "1"], env=lc.operator_env(),
                         stdout=subprocess.PIPE, text=True)
    out: list[str] = []
    try:
        assert w.stdout is not None
        for line in w.stdout:
            if line.startswith("every 1 s"):
                if len(out) == frames:
                    break
                out.append("")
            elif out:
                out[-1] += line
    finally:
        w.kill()
        w.wait()
    return out


def status(lc) -> dict:
    r = cli(lc, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def plan(lc) -> list:
    r = cli(lc, "plan", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def row(st, instance):
    return next(r for r in st["rows"] if r["instance_id"] == instance)


def test_status_agrees_with_the_cloud_plan_is_the_reconcile_s_and_tidy_removes_only_gone_nodes(cloud):
    # Errors: one line, with the fix.
    r = cli(cloud, "--cluster", "nope", "status")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "no Auto Scaling group is tagged swarm:cluster=nope" in r.stderr, r.stderr
    assert "check --cluster" in r.stderr, r.stderr
    r = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "status"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(cloud.state_dir)})
    assert r.returncode == 1 and "pass --cluster NAME" in r.stderr, r.stderr

    scale_out(cloud, 1, 2)
    st = status(cloud)
    # After a scale-out: every instance in service, its node Ready, the manager in the record.
    nodes = {n["instance"]: n for n in cloud.nodes()}
    assert sorted(r["instance_id"] for r in st["rows"]) == sorted(cloud.in_service("manager") + cloud.in_service("worker"))
    for r in st["rows"]:
        assert r["lifecycle_state"] == "InService" and r["agent_online"], r
        assert (r["node"]["role"], r["node"]["status"]) == (nodes[r["instance_id"]]["role"], "ready"), r
        assert r["in_record"] == (r["role"] == "manager"), r
        assert r["drift"] == [], r
    assert st["health"] == {"ready_managers": 1, "ready_workers": 2, "down_nodes": 0, "quorum_margin": 0,
                            "drift_items": 0}, st["health"]
    assert plan(cloud) == []
    # doctor on a formed cluster: the join tokens a manager published pass (SecureString, the
    # cluster's key), as every wire does.
    r = cli(cloud, "doctor", "--stack", cloud.cluster.name)
    assert r.returncode == 0 and "every wire holds" in r.stdout, (r.stdout, r.stderr)
    # --watch: the table again every second, until interrupted.
    frames = watched_frames(cloud, 2)
    assert len(frames) == 2 and all(all(i in f for i in nodes) for f in frames), frames

    # Drift: a stale record of no instance, and a worker killed whose termination and whose
    # replacement's launch events are both lost.
    r53 = cloud.client("route53")
    c = cloud.cluster
    r53.change_resource_record_sets(HostedZoneId=c.zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": c.dns_name, "Type": "A", "SetIdentifier": "i-0000000000000dead", "MultiValueAnswer": True,
            "TTL": cloud.timing.dns_ttl, "ResourceRecords": [{"Value": "10.0.0.250"}]}}]})
    victim = cloud.in_service("worker")[0]
    replacement = killed_with_its_events_lost(cloud, "worker", victim)

    st = status(cloud)
    assert st["health"]["down_nodes"] == 1, st["health"]
    gone = row(st, victim)
    assert gone["lifecycle_state"] is None and gone["node"]["status"] == "down", gone
    assert any("remove the node" in d for d in gone["drift"]), gone
    new = row(st, replacement)
    assert new["lifecycle_state"] == "Pending:Wait" and new["node"] is None, new
    assert any(d.startswith("join the swarm") for d in new["drift"]), new
    stale = row(st, "i-0000000000000dead")
    assert stale["in_record"] and any("delete its record" in d for d in stale["drift"]), stale
    # Each drift item on one row, and every row's drift is a planned repair.
    assert sum(len(r["drift"]) for r in st["rows"]) == len(st["repairs"]) == st["health"]["drift_items"] == 3, st

    # plan lists exactly the reconcile's repairs (the function's dry run, the same moment).
    dry = cloud.reconcile({"dry_run": True, "id": str(uuid.uuid4())})["clusters"][0]["repairs"]
    assert plan(cloud) == dry, dry

    # tidy: the Down node of the gone instance, nothing else (the record and the join stay).
    before = {n["id"] for n in cloud.nodes()}
    [victim_node] = [n["id"] for n in cloud.nodes() if n["instance"] == victim]
    r = cli(cloud, "tidy")
    assert r.returncode == 0, r.stderr
    # stdout is the answer alone (no metric lines: those are the functions' log).
    assert r.stdout == "cluster demo: made 1 repair(s), 0 failed, 0 left to the next run\n", r.stdout
    after = cloud.nodes()
    assert victim not in [n["instance"] for n in after], after
    assert replacement not in [n["instance"] for n in after], after
    assert {n["id"] for n in after} == before - {victim_node}, after
    assert "10.0.0.250" in cloud.dns_ips()
    assert sorted(r["repair"] for r in plan(cloud)) == ["dns-delete", "join"]

    # reconcile: the rest, with its steps on stderr.
    r = cli(cloud, "reconcile")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "join" in r.stderr, r.stderr
    settle(cloud)
    wait_for(lambda: plan(cloud) == [], 60, "nothing left to repair")
    st = status(cloud)
    assert st["health"] == {"ready_managers": 1, "ready_workers": 2, "down_nodes": 0, "quorum_margin": 0,
                            "drift_items": 0}, st["health"]
    assert "10.0.0.250" not in cloud.dns_ips()

    # retire: a worker out through its group's terminate hook, its tasks moved before it goes.
    create_service(cloud, 4)
    worker = cloud.in_service("worker")[0]
    r = cli(cloud, "retire", worker, "--decrement", "--wait")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Terminating:Wait" in r.stderr and f"{worker}: left" in r.stdout, (r.stdout, r.stderr)
    assert worker not in [i["id"] for i in cloud.instances("worker")]
    assert worker not in [n["instance"] for n in cloud.nodes()]
    [act] = [a for a in cloud.actions(worker) if a["transition"].endswith("TERMINATING")]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete"), act
    hook = [line for line in cloud.function_log() if (line.get("span") or {}).get("instance_id") == worker]
    assert any(line.get("step") == "drain" and line.get("outcome") == "ok" for line in hook), hook
    wait_for(lambda: len(running_tasks(cloud)) == 4, 60, "its tasks running elsewhere")
    # The only manager: refused, nothing terminated.
    [manager] = cloud.in_service("manager")
    r = cli(cloud, "retire", manager)
    assert r.returncode == 1 and "quorum margin is 0" in r.stderr, r.stderr
    assert cloud.in_service("manager") == [manager]

    # The profiles operators use. credential_process (aws-vault, granted, ...): the command gets
    # OperatorRole's key from a process and answers.
    config = cloud.state_dir / "aws-config"
    key = cloud.role_keys["OperatorRole"]
    creds = json.dumps({"Version": 1, "AccessKeyId": key, "SecretAccessKey": "test", "SessionToken": "test"})
    config.write_text(f"[profile vault]\ncredential_process = /bin/echo '{creds}'\n"
                      "[profile team]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Operator\n"
                      "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n")
    bare = {k: v for k, v in cloud.operator_env().items() if not k.startswith("AWS_") or k in ("AWS_ENDPOINT_URL", "AWS_REGION")}
    r = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "--profile", "vault", "status", "--json"],
                       env={**bare, "AWS_CONFIG_FILE": str(config)}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["cluster"] == cloud.cluster.name, r.stderr
    # SSO (IAM Identity Center): without a cached login, one line that says to log in.
    r = subprocess.run([str(bin_dir() / "swarm-lifecycle"), "--profile", "team", "status"],
                       env={**bare, "AWS_CONFIG_FILE": str(config)}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "sso login" in r.stderr, r.stderr
    assert "\x1b[" not in r.stderr, "no colour when piped"


def test_plan_retire_names_a_would_be_blocked_drain_and_changes_nothing(cloud):
    """#30.2: before anyone retires an instance, `plan --retire` says which of its node's
    services would have nowhere to go (the drain would be told blocked) and where their budgets
    stand, read only."""
    scale_out(cloud, 1, 2)
    m = cloud.in_service("manager")[0]
    w = cloud.in_service("worker")[0]
    host = cloud.state()["hosts"][w]["hostname"]
    for args in (["--name", "pinned", "--constraint", f"node.hostname=={host}"],
                 ["--name", "web", "--mode", "global"],
                 ["--name", "kept", "--replicas", "2", "--replicas-max-per-node", "1", "--constraint", "node.role==worker",
                  "--label", "swarm-lifecycle.min-available=2"]):
        r = cloud.docker(m, "service", "create", "--detach", *args, "busybox:local", "sleep", "1000000")
        assert r.returncode == 0, r.stderr
    wait_for(lambda: len([t for t in cloud.docker(m, "node", "ps", host, "--filter", "desired-state=running",
                                                  "--format", "{{.CurrentState}}").stdout.splitlines()
                          if t.startswith("Running")]) == 3, 60, "its three tasks running")
    before = len(cloud.control("invocations"))
    r = cli(cloud, "plan", "--retire", w, "--json")
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)
    got = {s["service"]: (s["placement"], s.get("budget")) for s in o["services"]}
    assert got["pinned"][0] == "blocked" and got["web"] == ("global", None), got
    # Its other replica's node is the only other worker, and already has one: nowhere to go.
    assert got["kept"][0] == "blocked" and got["kept"][1].startswith("stuck: 1 running elsewhere"), got
    pinned = next(s for s in o["services"] if s["service"] == "pinned")
    assert f"node.hostname=={host}" in pinned["reason"], pinned
    assert "blocked by kept" in o["detail"] or "blocked by pinned" in o["detail"], o
    text = cli(cloud, "plan", "--retire", w)
    assert text.returncode == 0 and "pinned" in text.stdout and "blocked" in text.stdout, text.stdout
    # Read only: nothing drained, nothing fenced, no function ran, the instance still in service.
    nodes = {n["instance"]: n for n in cloud.nodes()}
    assert (nodes[w]["status"], nodes[w]["availability"]) == ("ready", "active"), nodes[w]
    assert w in cloud.in_service("worker") and len(cloud.control("invocations")) == before
