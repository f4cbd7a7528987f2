"""Issue #2/#3 scenarios on the real swarm."""

from __future__ import annotations

import json
import time

import pytest

from conftest import announced_once, bin_dir, left_by_itself, scale_out, settle
from localcloud.client import LAUNCH, TERMINATE, wait_for


def manager_ips(lc):
    return sorted(i["ip"] for i in lc.instances("manager") if i["lifecycle"] == "InService")


def assert_one_swarm(lc, managers: int, workers: int):
    nodes = lc.nodes()
    ready = [n for n in nodes if n["status"] == "ready"]
    assert len(ready) == managers + workers, nodes
    by_instance = {n["instance"]: n for n in ready}
    for iid in lc.in_service("manager"):
        assert by_instance[iid]["role"] == "manager", nodes
    for iid in lc.in_service("worker"):
        assert by_instance[iid]["role"] == "worker", nodes
    assert sum(n["leader"] == "true" for n in nodes) == 1
    # Every manager sees the same swarm.
    ids = {n["id"] for n in nodes}
    for m in lc.in_service("manager"):
        assert {n["id"] for n in lc.nodes(via=m)} == ids


def test_launch_from_empty(cloud):
    scale_out(cloud, 3, 2)
    assert_one_swarm(cloud, 3, 2)
    assert cloud.dns_ips() == manager_ips(cloud)
    launches = [a for a in cloud.actions() if a["transition"].endswith("LAUNCHING")]
    assert len(launches) == 5 and all(a["result"] == "CONTINUE" and a["cause"] == "complete" for a in launches)
    inits = [line for line in cloud.function_log() if line.get("step") == "init" and line.get("outcome") == "ok"]
    assert len(inits) == 1, "the swarm is initialised exactly once"
    # Each join told once, as it happened (action events on EventBridge).
    for role in ("manager", "worker"):
        joined = announced_once(cloud, "Swarm Node Joined", cloud.in_service(role), role=role, outcome="joined")
        assert all(d["durations"]["action"] >= d["durations"]["invocation"] > 0 for d in joined), [d["durations"] for d in joined]
    assert len(cloud.published()) == 5, cloud.published()


def create_service(lc, replicas: int = 4) -> None:
    m = lc.in_service("manager")[0]
    r = lc.docker(m, "service", "create", "--detach", "--name", "web", "--replicas", str(replicas),
                  "--stop-grace-period", "2s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: running_tasks(lc) and len(running_tasks(lc)) == replicas, 60, "service tasks running")


def running_tasks(lc) -> list[str]:
    """Node hostnames of the running tasks of the service."""
    m = lc.in_service("manager")[0]
    r = lc.docker(m, "service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")
    return [line.split()[0] for line in r.stdout.splitlines() if " Running" in line]


def test_worker_termination(cloud):
    scale_out(cloud, 1, 2)
    create_service(cloud, 4)
    w = cloud.in_service("worker")[0]
    host = cloud.state()["hosts"][w]["hostname"]
    cloud.terminate(w)
    wait_for(lambda: w not in [i["id"] for i in cloud.instances("worker")], 60, "worker terminated")
    settle(cloud)
    act = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")][0]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete")
    assert w not in [n["instance"] for n in cloud.nodes()], "node removed"
    tasks = running_tasks(cloud)
    assert len(tasks) == 4 and host not in tasks, tasks
    assert cloud.dns_ips() == manager_ips(cloud)
    announced_once(cloud, "Swarm Node Retired", [w], role="worker", outcome="retired")


def test_a_service_that_cannot_run_anywhere_does_not_delay_a_workers_drain(cloud):
    """A drain waits for the leaving node's own services, not for every service of the swarm:
    one that matches no node stays short of its replica forever."""
    scale_out(cloud, 1, 2)
    create_service(cloud, 4)
    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "nowhere", "--replicas", "1",
                     "--constraint", "node.labels.nowhere==true", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    w = next(i for i in cloud.in_service("worker") if cloud.state()["hosts"][i]["hostname"] in running_tasks(cloud))
    cloud.terminate(w)
    wait_for(lambda: w not in [i["id"] for i in cloud.instances("worker")], 2 * cloud.timing.drain_timeout,
             "worker terminated")
    settle(cloud)
    steps = [(line.get("step"), line.get("outcome")) for line in cloud.function_log()
             if (line.get("span") or {}).get("instance_id") == w and line.get("step") == "drain"]
    # Its own tasks moved: done, never waited out to the drain timeout for `nowhere`.
    assert ("drain", "ok") in steps and ("drain", "timeout") not in steps, steps
    assert not cloud.published("Swarm Drain Timed Out")
    act = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")][0]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete")
    assert len(running_tasks(cloud)) == 4


@pytest.mark.timing(drain_timeout=30)
@pytest.mark.parametrize("policy", ["proceed", "wait"])
def test_a_service_pinned_to_the_leaving_worker_is_told_blocked_at_once(cloud, policy):
    """#30.2: a service whose constraint only the leaving node meets can never move. The drain
    says so within seconds ("Swarm Drain Blocked", the service and docker's reason) and follows
    BLOCKED_DRAIN: proceed lets the instance go now; wait drains until its timeout."""
    from conftest import bin_dir

    scale_out(cloud, 1, 2)
    cloud.deploy(bin_dir(), extra_env={"BLOCKED_DRAIN": policy})
    w = cloud.in_service("worker")[0]
    host = cloud.state()["hosts"][w]["hostname"]
    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "create", "--detach", "--name", "pinned", "--constraint", f"node.hostname=={host}",
                     "--stop-grace-period", "1s", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr

    def pinned_running():
        out = cloud.docker(m, "service", "ps", "pinned", "--filter", "desired-state=running",
                           "--format", "{{.Node}} {{.CurrentState}}").stdout
        return f"{host} Running" in out

    wait_for(pinned_running, 60, "the pinned task running")
    cloud.terminate(w)
    t0 = time.time()
    told = wait_for(lambda: cloud.published("Swarm Drain Blocked"), cloud.timing.drain_timeout, "the blocked drain told")
    assert told[0]["t"] - t0 < 15, told[0]["t"] - t0
    d = told[0]["detail"]
    assert d["instanceId"] == w and [b["service"] for b in d["blocked"]] == ["pinned"], d
    assert d["blocked"][0]["reason"].startswith("no suitable node"), d
    wait_for(lambda: w not in [i["id"] for i in cloud.instances("worker")], 3 * cloud.timing.drain_timeout,
             "the worker terminated")
    settle(cloud)
    act = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")][0]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete"), act
    timed_out = cloud.published("Swarm Drain Timed Out")
    if policy == "proceed":
        assert not timed_out and act["ended"] - t0 < cloud.timing.drain_timeout, (timed_out, act["ended"] - t0)
    else:
        assert len(timed_out) == 1 and act["ended"] - t0 >= cloud.timing.drain_timeout, (timed_out, act["ended"] - t0)
    announced_once(cloud, "Swarm Drain Blocked", [w], role="worker", outcome="drain-blocked")
    assert w not in [n["instance"] for n in cloud.nodes()]


# A hold that outlasts the drain and the removal, as TTL + 120 s does on AWS: the function
# then never has to re-arm the action after INSYNC, and the release comes right on time.
@pytest.mark.timing(hold_extra=15)
# The hold outlasts the retirement's worst case (a demoted leader steps down ~8.5 s after its
# demotion), so the release is exactly INSYNC + hold, with no re-arm.
@pytest.mark.timing(hold_extra=35)
def test_manager_termination_dns_first_and_held(cloud):
    scale_out(cloud, 3, 1)
    create_service(cloud, 3)
    t = cloud.timing
    victim = cloud.in_service("manager")[0]
    ip = cloud.state()["hosts"][victim]["ip"]
    cloud.terminate(victim)
    wait_for(lambda: victim not in [i["id"] for i in cloud.instances("manager")], 60, "manager terminated")
    settle(cloud)
    tl = cloud.timeline()
    delete = next(e for e in tl if e["kind"] == "dns-change" and any(c["action"] == "DELETE" and c["set"] == victim for c in e["changes"]))
    first_drain = next(e for e in tl if e["kind"] == "command" and e["comment"] in ("drain", "drain and retire node"))
    assert delete["t"] < first_drain["t"], "DNS is updated before the drain"
    insync = delete["insync_at"]
    released = next(e for e in tl if e["kind"] == "action-ended" and e["instance"] == victim and e["transition"] == "terminate")
    assert released["t"] >= insync + t.hold, (released, insync)
    # Released when the hold ends; a retirement still running then (a busy host) is released
    # by the function as soon as it is done, never a re-armed timeout later.
    done = max(e["t"] for e in tl if e["kind"] == "command" and delete["t"] < e["t"] <= released["t"])
    if done < insync + t.hold:
        assert released["t"] <= insync + t.hold + 2, (released, insync)
    else:
        assert released["cause"] == "complete" and released["t"] <= done + 3, (released, done)
    assert ip not in cloud.dns_ips() and cloud.dns_ips() == manager_ips(cloud)
    nodes = cloud.nodes()
    assert victim not in [n["instance"] for n in nodes]
    assert sum(n["role"] == "manager" for n in nodes) == 2
    steps = {(line.get("step"), line.get("outcome")) for line in cloud.function_log()
             if (line.get("span") or {}).get("instance_id") == victim}
    assert {("demote", "ok"), ("leave", "ok"), ("remove", "ok")} <= steps, steps
    # Told when its node was out, the hold still running.
    announced_once(cloud, "Swarm Node Retired", [victim], role="manager", outcome="held")
    # The swarm is still writable.
    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "scale", "--detach", "web=4")
    assert r.returncode == 0, r.stderr


def test_same_event_twice_and_terminate_before_launch(cloud):
    scale_out(cloud, 1, 1)
    events = [json.loads(line) for line in (cloud.state_dir / "events.jsonl").read_text().splitlines()]
    launches = [e for e in events if e["detail-type"] == LAUNCH]
    assert len(launches) == 2, [e["detail-type"] for e in events]
    before = cloud.nodes()
    for e in launches:  # every launch event again (EC2's own events are not replayed)
        cloud.control("events", e)
    settle(cloud)
    assert cloud.nodes() == before
    invs = cloud.control("invocations")
    assert all(i["result"] == "ok" for i in invs), invs
    again = [i for i in invs if i["function"] == cloud.fn("launch-hook")][-2:]
    assert [i["response"]["outcome"] for i in again] == ["already-ended", "already-ended"]

    # A launch event that is lost; the instance is terminated before anyone joined it.
    cloud.control("faults", {"drop_event": 1})
    cloud.scale("worker", 2)
    lost = wait_for(lambda: [i["id"] for i in cloud.instances("worker") if i["lifecycle"] == "Pending:Wait"], 30, "a waiting worker")[0]
    wait_for(lambda: cloud.state()["hosts"].get(lost, {}).get("agent") == "Online", 30, "its agent")
    cloud.terminate(lost)
    wait_for(lambda: lost not in [i["id"] for i in cloud.instances("worker")], 60, "the stray terminated")
    settle(cloud)
    act = [a for a in cloud.actions(lost) if a["transition"].endswith("TERMINATING")][0]
    assert (act["result"], act["cause"]) == ("CONTINUE", "complete")
    # Its launch event arrives late, for an instance that is gone: logged, no crash.
    launch = {"version": "0", "id": "late-launch", "detail-type": LAUNCH, "source": "aws.autoscaling",
              "account": "123456789012", "time": "2026-11-21T00:00:00Z", "region": "us-east-1", "resources": [],
              "detail": {"LifecycleActionToken": "gone", "AutoScalingGroupName": cloud.cluster.worker_group,
                         "LifecycleHookName": "swarm-launch", "EC2InstanceId": lost,
                         "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}}
    cloud.control("events", launch)
    settle(cloud)
    last = cloud.control("invocations")[-1]
    assert last["result"] == "ok" and last["response"]["outcome"] == "already-ended", last
    assert len([n for n in cloud.nodes() if n["status"] == "ready"]) == 2


def test_bad_input_is_logged_and_acknowledged(cloud):
    bad = [
        {"not": "an event"},
        {"version": "0", "detail-type": LAUNCH, "source": "aws.autoscaling", "detail": {"EC2InstanceId": 7}},
        {"version": "0", "detail-type": "Something Else", "source": "aws.ec2", "detail": {}},
        {"version": "0", "detail-type": TERMINATE, "source": "aws.autoscaling",
         "detail": {"LifecycleActionToken": "t", "AutoScalingGroupName": "x", "LifecycleHookName": "h",
                    "EC2InstanceId": "i-0123456789abcdef0; reboot", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}},
    ]
    for b in bad:
        cloud.control("invoke", {"function": cloud.fn("launch-hook"), "payload": b})
    wait_for(lambda: len(cloud.control("invocations")) == len(bad), 30, "the invocations")
    invs = cloud.control("invocations")
    assert all(i["result"] == "ok" and i["attempt"] == 0 and i["response"]["outcome"] == "invalid" for i in invs), invs
    errors = [line for line in cloud.function_log() if line.get("step") == "parse" and line.get("level") == "ERROR"]
    assert len(errors) == len(bad)


def test_lambdas_log_level_and_format_reach_the_functions(cloud):
    """The function's LoggingConfig (ApplicationLogLevel, LogFormat), which Lambda hands the
    runtime as AWS_LAMBDA_LOG_LEVEL and AWS_LAMBDA_LOG_FORMAT, changes what the functions
    write: a configuration change, no new code."""
    event = {"version": "0", "detail-type": LAUNCH, "source": "aws.autoscaling", "detail": {"EC2InstanceId": 7}}

    def new_lines_of_one_invocation():
        before, n = len(cloud.function_log()), len(cloud.control("invocations"))
        cloud.control("invoke", {"function": cloud.fn("launch-hook"), "payload": event})
        wait_for(lambda: len(cloud.control("invocations")) == n + 1, 30, "the invocation")
        return cloud.function_log()[before:]

    at_info = new_lines_of_one_invocation()  # the template's default: INFO, JSON
    assert [line.get("level") for line in at_info if line.get("step") in ("event", "parse")] == ["ERROR"], at_info
    cloud.deploy(bin_dir(), log_level="DEBUG")
    at_debug = new_lines_of_one_invocation()
    assert [line.get("level") for line in at_debug if line.get("step") in ("event", "parse")] == ["DEBUG", "ERROR"], at_debug
    cloud.deploy(bin_dir(), log_level="DEBUG", log_format="Text")
    as_text = [line["raw"] for line in new_lines_of_one_invocation() if "raw" in line]
    assert any("DEBUG" in line and 'step="event"' in line for line in as_text), as_text
    assert any("ERROR" in line and 'step="parse"' in line for line in as_text), as_text


def test_unmanaged_group_is_ignored(cloud):
    asg = cloud.client("autoscaling")
    asg.create_auto_scaling_group(AutoScalingGroupName="other", MinSize=0, MaxSize=2, DesiredCapacity=0,
                                  VPCZoneIdentifier=cloud.cluster.subnet_id,
                                  LaunchTemplate={"LaunchTemplateName": "demo-node", "Version": "$Latest"})
    asg.put_lifecycle_hook(LifecycleHookName="l", AutoScalingGroupName="other",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=30, DefaultResult="CONTINUE")
    cloud.control("rules", {"name": "other", "function": cloud.fn("launch-hook"),
                            "pattern": {"source": ["aws.autoscaling"], "detail": {"AutoScalingGroupName": ["other"]}}})
    cloud.control("permission", {"function": cloud.fn("launch-hook"), "statement_id": "other",
                                 "source_arn": "arn:aws:events:us-east-1:123456789012:rule/other"})
    asg.set_desired_capacity(AutoScalingGroupName="other", DesiredCapacity=1)
    wait_for(lambda: cloud.control("invocations"), 30, "the invocation")
    inv = cloud.control("invocations")[0]
    assert inv["response"]["outcome"] == "ignored", inv
    assert not [line for line in cloud.state_dir.joinpath("timeline.jsonl").read_text().splitlines() if '"command"' in line]


def test_two_of_three_managers_terminated_at_once_keep_a_writable_swarm(cloud):
    scale_out(cloud, 3, 1)
    create_service(cloud, 2)
    a, b, survivor = cloud.in_service("manager")
    survivor_ip = cloud.state()["hosts"][survivor]["ip"]
    cloud.terminate(a)
    cloud.terminate(b)
    # Writable while both leave.
    r = cloud.docker(survivor, "service", "create", "--detach", "--name", "during", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not {a, b} & {i["id"] for i in cloud.instances("manager")}, 90, "both managers terminated")
    settle(cloud)
    nodes = cloud.nodes(via=survivor)
    assert [n["instance"] for n in nodes if n["role"] == "manager"] == [survivor], nodes
    assert left_by_itself(cloud, a) and left_by_itself(cloud, b), "a leaving manager's own leave failed"
    assert cloud.dns_ips() == [survivor_ip]
    # And writable after.
    r = cloud.docker(survivor, "service", "create", "--detach", "--name", "after", "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr


@pytest.mark.timing(propagation=14.0)
def test_slow_dns_change_does_not_release_a_manager_mid_retire(cloud):
    """Route 53 takes longer to propagate than the terminate hook's timeout (hold 10 s): the
    action is re-armed while the function waits for INSYNC, so the node is drained, demoted
    and removed before the instance goes, and the hold still counts from INSYNC."""
    scale_out(cloud, 3, 1, timeout=240)
    victim = cloud.in_service("manager")[0]
    cloud.terminate(victim)
    wait_for(lambda: victim not in [i["id"] for i in cloud.instances("manager")], 90, "manager terminated")
    settle(cloud)
    tl = cloud.timeline()
    released = next(e for e in tl if e["kind"] == "action-ended" and e["instance"] == victim and e["transition"] == "terminate")
    retired = [e for e in tl if e["kind"] == "command" and e["comment"] in ("drain and retire node", "retire node")]
    assert retired and retired[0]["t"] < released["t"], "the instance went before its node was retired"
    insync = next(e for e in tl if e["kind"] == "dns-change" and any(c["set"] == victim for c in e["changes"]))["insync_at"]
    assert released["t"] >= insync + cloud.timing.hold, (released, insync)
    assert victim not in [n["instance"] for n in cloud.nodes()]


# ---------------------------------------------------------------- found by review (#12)

def test_a_terminate_does_not_wait_behind_joins(cloud):
    """#12.7: launches and terminations go to two functions, so a termination is handled at
    once even when every execution the launches may use is busy with a long join."""
    from conftest import bin_dir

    scale_out(cloud, 1, 1)
    w1 = cloud.in_service("worker")[0]
    # Reserved concurrency 1 for each; the next join hangs until its command times out (15 s),
    # longer than the terminate hook's timeout (the hold, 10 s).
    cloud.deploy(bin_dir(), extra_env={"COMMAND_TIMEOUT_SECONDS": "15"},
                 concurrency={"launch-hook": 1, "terminate-hook": 1})
    cloud.control("faults", {"hang_command:swarm join": 1})
    cloud.scale("worker", 2)
    wait_for(lambda: any(e["kind"] == "fault" and e.get("name") == "hang_command:swarm join" for e in cloud.timeline()),
             60, "a join that hangs")
    cloud.terminate(w1)
    ended = wait_for(lambda: [a for a in cloud.actions(w1) if a["transition"].endswith("TERMINATING") and a["ended"]],
                     60, "the termination to end")
    assert ended[0]["cause"] == "complete", f"the terminate action of {w1} was not completed by the function: {ended}"
    settle(cloud, 180)
    assert not [n for n in cloud.nodes() if n["instance"] == w1], "the terminated worker's node is still there"
    assert len(cloud.in_service("worker")) == 1


def test_terminations_throttled_behind_the_functions_concurrency_keep_their_drain(cloud):
    """#33.3: more terminations than the terminate function may run at once (reserved
    concurrency 1). Lambda throttles the others and tries them again with its backoff (1 s,
    doubling); the first retirement outlasts the hook's timeout (the hold, 10 s). No waiting
    action may expire: each worker's node is retired and its action completed by the function."""
    from conftest import bin_dir

    scale_out(cloud, 1, 3)
    cloud.deploy(bin_dir(), concurrency={"terminate-hook": 1})
    first, *rest = cloud.in_service("worker")
    cloud.control("faults", {f"delay_command:drain and retire node:{first}": 15})
    for w in (first, *rest):
        cloud.terminate(w)
    settle(cloud, 240)
    tl = cloud.timeline()
    throttled = [e for e in tl if e["kind"] == "lambda-throttled" and e["function"] == cloud.fn("terminate-hook")]
    assert throttled, "no termination was throttled: the scenario did not test its case"
    assert not [e for e in tl if e["kind"] == "lambda-event-discarded"], "an event was dropped from the queue"
    for w in (first, *rest):
        ended = [a for a in cloud.actions(w) if a["transition"].endswith("TERMINATING")]
        assert [a["cause"] for a in ended] == ["complete"], f"{w}'s terminate action was not completed by the function: {ended}"
    assert not [n for n in cloud.nodes() if n["instance"] in (first, *rest)], cloud.nodes()
    assert len(cloud.in_service("worker")) == 0
    # Retired once each: the event that comes after its instance was taken on says nothing more.
    announced_once(cloud, "Swarm Node Retired", [first, *rest], role="worker")


@pytest.mark.timing(shutdown=10)
def test_a_terminate_during_a_join_leaves_no_ghost_node(cloud):
    """#12.11: the instance is terminated while its join command is in flight; no node of it
    may outlive its terminate action (the instance runs on for a while shutting down)."""
    scale_out(cloud, 1, 0)
    cloud.scale("worker", 1)
    w = wait_for(lambda: [i["id"] for i in cloud.instances("worker")], 30, "a worker launching")[0]
    # Its join starts 5 s late on the instance: the terminate comes meanwhile.
    cloud.control("faults", {f"delay_command:swarm join:{w}": 5})
    wait_for(lambda: any(e["kind"] == "fault" and e.get("instance") == w for e in cloud.timeline()), 60,
             "the worker's join in flight")
    cloud.terminate(w)
    wait_for(lambda: any(e["kind"] == "instance-terminated" and e.get("instance") == w for e in cloud.timeline()), 60,
             "the worker terminated")
    settle(cloud)
    ghosts = [n for n in cloud.nodes() if n["instance"] == w or n["addr"] == next(
        e["ip"] for e in cloud.timeline() if e["kind"] == "instance-launched" and e["instance"] == w)]
    assert not ghosts, f"a node of the terminated {w} outlived its terminate action: {ghosts}"
