"""End-to-end scenarios: the real lifecycle function binary, driven by the local cloud's
lifecycle events, against real dockerd hosts. Each scenario gets a fresh cloud."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from localcloud import world  # noqa: E402
from localcloud.client import LocalCloud, Timing, wait_for  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts"


def bin_dir() -> Path:
    d = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
    for name in ("lifecycle-hook", "ecs-state-change", "instance-notice", "scheduled-change", "reconcile", "drain-check"):
        if not (d / name).exists():
            pytest.fail(f"{d / name} is missing: run `cargo build` first (make test does)")
    return d


def pytest_configure(config):
    # `pytest -n 2` (make e2e): each worker's clouds run in a network namespace of their own.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        world.enter(worker.removeprefix("gw"))
    config.addinivalue_line("markers", "timing(**constants): the scenario's local-cloud Timing")
    config.addinivalue_line("markers", "expect_denials: the scenario asserts IAM denials itself")
    config.addinivalue_line("markers", "zones(n): the groups span n Availability Zones")
    config.addinivalue_line("markers", "template_without(role, action): the template with one action removed from a role")
    config.addinivalue_line("markers", "cluster_params(**params): more of the template's parameters")
    config.addinivalue_line("markers", "alone: loads the machine itself; make e2e runs it with no scenario beside it")


def pytest_unconfigure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        world.remove(world.current())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Each phase's report on the item: the cloud fixture keeps a failed scenario's artefacts.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def keep_if_failed(node, state: Path) -> None:
    """A failed scenario's artefacts (logs, timeline, hosts' dockerd logs) copied to
    $E2E_KEEP_FAILED/<scenario>: .ci/run points it outside the clone, so a CI failure can be
    read after the clone is gone."""
    keep = os.environ.get("E2E_KEEP_FAILED")
    report = getattr(node, "report_call", None)
    if keep and report is not None and report.failed:
        import shutil

        shutil.copytree(state, Path(keep) / node.name, ignore=shutil.ignore_patterns("*.tar", "argv-bin"),
                        dirs_exist_ok=True)


def edited_template(state: Path, role: str, action: str) -> Path:
    """infra/template.yaml with `action` taken out of every statement of `role`."""
    lines = (ROOT / "infra" / "template.yaml").read_text().splitlines(keepends=True)
    out, inside = [], False
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
            inside = line.strip() == f"{role}:"
        if inside and line.strip() in (f"- {action}",):
            continue
        out.append(line.replace(f", {action}]", "]").replace(f"[{action}, ", "[") if inside else line)
    path = state / "template-edited.yaml"
    path.write_text("".join(out))
    assert path.read_text() != (ROOT / "infra" / "template.yaml").read_text(), f"{role} does not grant {action}"
    return path


@pytest.fixture
def cloud(request):
    """A fresh local cloud with an empty cluster and the lifecycle function deployed."""
    state = ARTIFACTS / request.node.name
    if state.exists():
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    # @pytest.mark.timing(hold_extra=15): a scenario that needs other time constants.
    marker = request.node.get_closest_marker("timing")
    lc = LocalCloud.start(Timing(**(marker.kwargs if marker else {})), state_dir=state)
    denials = []
    try:
        edit = request.node.get_closest_marker("template_without")
        zones = request.node.get_closest_marker("zones")
        params = request.node.get_closest_marker("cluster_params")
        lc.create_cluster(template=edited_template(state, **edit.kwargs) if edit else None,
                          zones=zones.args[0] if zones else 1, params=params.kwargs if params else None)
        lc.deploy(bin_dir())
        yield lc
        if not request.node.get_closest_marker("expect_denials"):
            denials = lc.denials()
    finally:
        leftovers = lc.stop()
        keep_if_failed(request.node, state)
        assert leftovers == [], f"the cloud's teardown left {leftovers}"
    # A denial in a green path is a defect of the template or the code: name it.
    assert denials == [], "IAM denied: " + "; ".join(
        f"{d['principal']} ({d['caller']}) {d['action']} on {d['resource']}" for d in denials)


def settle(lc: LocalCloud, timeout: float = 120) -> None:
    """Waits until no invocation runs and no lifecycle action waits."""
    wait_for(lambda: lc.idle() and not any(a["ended"] is None for a in lc.actions()), timeout, "the cloud to settle")


def scale_out(lc: LocalCloud, managers: int, workers: int, timeout: float = 180) -> None:
    lc.scale("manager", managers)
    lc.scale("worker", workers)
    wait_for(lambda: len(lc.in_service("manager")) == managers and len(lc.in_service("worker")) == workers,
             timeout, f"{managers} managers and {workers} workers InService")
    settle(lc)


def killed_with_its_events_lost(lc: LocalCloud, role: str, victim: str) -> str:
    """`victim` dies hard; its termination event and its replacement's launch event are both
    lost. Returns once the group has let it go, the swarm sees its node down and the
    replacement's agent is Online (its launch action still waiting): the replacement."""
    lc.control("kill", {"instance": victim})
    lc.control("faults", {"drop_event": 2})
    lc.terminate(victim, decrement=False)
    replacement = wait_for(lambda: [i["id"] for i in lc.instances(role) if i["lifecycle"] == "Pending:Wait"], 30,
                           "the replacement")[0]
    wait_for(lambda: victim not in [i["id"] for i in lc.instances(role)], 60, "the victim gone")
    wait_for(lambda: any(n["instance"] == victim and n["status"] == "down" for n in lc.nodes()), 60, "its node down")
    wait_for(lambda: lc.state()["hosts"].get(replacement, {}).get("agent") == "Online", 60, "the replacement's agent")
    return replacement


# What every action event's detail carries (docs/operate.md, "Action events").
ACTION_EVENT_FIELDS = {"version", "cluster", "role", "outcome", "reason", "durations"}


def announced_once(lc: LocalCloud, detail_type: str, instances: list[str], **want: object) -> list[dict]:
    """Each instance's action was published exactly once as `detail_type`, from the functions'
    source, with the documented fields and the `want`ed values. Returns the details."""
    events = lc.published(detail_type)
    out = []
    for iid in instances:
        mine = [e for e in events if e["detail"].get("instanceId") == iid]
        assert len(mine) == 1, f"{detail_type} for {iid}: {len(mine)} events; all: {events}"
        e = mine[0]
        assert e["source"] == "swarm-lifecycle" and e["bus"] == "default", e
        d = e["detail"]
        assert ACTION_EVENT_FIELDS <= d.keys() and d["cluster"] == lc.cluster.name, d
        assert {k: d.get(k) for k in want} == want, d
        out.append(d)
    return out


FIXTURE_INSTANCES = ("i-0f1e2d3c4b5a69788", "i-0a1b2c3d4e5f60718", "i-0123456789abcdef0")


def fixture_event(lc: LocalCloud, name: str, instance: str) -> dict:
    """events/<name> aimed at this cluster: its instance ids become `instance`, its groups and
    ECS cluster this cluster's, its time now and its id fresh (EventBridge's copies of one
    event share the id: call once and deliver the result as often as wanted)."""
    c = lc.cluster
    assert c is not None
    text = (ROOT / "events" / name).read_text()
    for old in FIXTURE_INSTANCES:
        text = text.replace(old, instance)
    text = (text.replace("prod-managers", c.manager_group).replace("prod-workers", c.worker_group)
            .replace("cluster/prod", f"cluster/{c.name}"))
    event = json.loads(text)
    event["id"] = str(uuid.uuid4())
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return event


def left_by_itself(lc: LocalCloud, instance: str) -> bool:
    """The leaving instance's own `docker swarm leave` succeeded (the function's last leave
    outcome for it is ok): it does not go on believing it is in a swarm."""
    outcomes = [line.get("outcome") for line in lc.function_log()
                if line.get("step") == "leave" and (line.get("span") or {}).get("instance_id") == instance]
    return bool(outcomes) and outcomes[-1] == "ok"
