"""The fidelity layer's state: the cloud (lifecycle actions, hosts, commands, changes, faults,
the Lambda functions) that the service patches in `services/` act on, each as AWS documents it.

- Auto Scaling lifecycle hooks: instances wait in Pending:Wait / Terminating:Wait, an
  EventBridge event in AWS's shape is emitted, CompleteLifecycleAction and
  RecordLifecycleActionHeartbeat work, and the heartbeat timeout applies DefaultResult.
- SSM Run Command: AWS-RunShellScript really runs inside the instance's host, with AWS's
  statuses, output and exit codes; DescribeInstanceInformation reports agents Online
  after a configurable delay.
- Route 53: a change is PENDING for a configurable propagation time, then INSYNC.
- EC2: an instance's states (pending, running, stopping, stopped, shutting-down, terminated)
  with an "EC2 Instance State-change Notification" for each; TerminateInstances and
  StopInstances outside Auto Scaling shut the host down, and the group's health check then
  replaces the instance through its terminate hook; StartInstances boots the host again; a
  Spot interruption warning precedes a termination by its notice.
- Auto Scaling instance refresh (refresh.py): a launch template change rolls the group
  through its hooks, launch before terminate when MinHealthyPercentage is 100.
- Faults can be injected through the control API (/_localcloud/faults).

moto runs in this process; every AWS request holds one lock (moto is not thread-safe).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.autoscaling import models as asm
from moto.autoscaling.exceptions import ValidationError as AsValidationError
from moto.core.exceptions import ServiceException
from moto.ec2.models.instances import InstanceState as Ec2InstanceState
from moto.kms.models import kms_backends
from moto.sns.models import sns_backends

from . import alarms
from .hosts import Hosts
from .iam import Authority
from .lambdas import Lambdas

ACCOUNT = "123456789012"
STATE_CHANGE = "EC2 Instance State-change Notification"
SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
HEALTH = "AWS Health Event"
# EC2's scheduled event codes and the AWS Health event types that announce them.
HEALTH_TYPES = {"instance-retirement": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "instance-stop": "AWS_EC2_INSTANCE_STOP_SCHEDULED",
                "instance-reboot": "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
                "system-reboot": "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED",
                "system-maintenance": "AWS_EC2_SYSTEM_MAINTENANCE_EVENT"}
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
LOCK = threading.RLock()
# Go's syscall.ForkLock, for the reason Go has one (the SSM agent is Go): a thread that forks
# while another has a script file open for writing hands the child that descriptor until it
# execs, and executing the script then fails with ETXTBSY ("Text file busy", exit 126).
# Script files are written, and children forked, under this lock.
FORK_LOCK = threading.Lock()
_execute_child = subprocess.Popen._execute_child


def _execute_child_under_fork_lock(self, *args, **kwargs):
    with FORK_LOCK:
        return _execute_child(self, *args, **kwargs)


subprocess.Popen._execute_child = _execute_child_under_fork_lock
OUTPUT_LIMIT = 24000  # GetCommandInvocation truncates each stream here


class AwsError(ServiceException):
    """An AWS error of the service being called (moto serialises it with that service's model,
    because this class lives outside moto's packages)."""


def utc(ts: float | None = None) -> datetime:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), tz=UTC)


def iso(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Action:
    token: str
    group: str
    hook: str
    instance_id: str
    transition: str  # autoscaling:EC2_INSTANCE_LAUNCHING / _TERMINATING
    heartbeat_timeout: float
    default_result: str
    started: float
    deadline: float
    global_deadline: float
    heartbeats: list[float] = field(default_factory=list)
    ended: float | None = None
    result: str | None = None
    cause: str | None = None  # "complete" or "timeout"

    @property
    def launching(self) -> bool:
        return self.transition.endswith("LAUNCHING")

    def public(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "token", "group", "hook", "instance_id", "transition", "heartbeat_timeout", "default_result",
            "started", "deadline", "heartbeats", "ended", "result", "cause")}


@dataclass
class Invocation:
    command_id: str
    instance_id: str
    comment: str
    document: str
    status: str = "Pending"
    details: str = "Pending"
    code: int = -1
    stdout: str = ""
    stderr: str = ""
    start: float | None = None
    end: float | None = None
    requested: float = field(default_factory=time.time)

    def finish(self, status: str, details: str, code: int, stdout: str = "", stderr: str = "") -> None:
        """Ends the invocation: its output first, its status last, so that a reader that reads
        the status first (`view`) never sees a final status without the output (a drain check
        once read Success with an empty stdout and took the node for retired)."""
        self.stdout, self.stderr, self.code, self.end = stdout, stderr, code, time.time()
        self.details = details
        self.status = status

    def view(self) -> dict[str, Any]:
        """The fields as one moment saw them: the status read before the rest (see `finish`)."""
        status, details = self.status, self.details
        return {"status": status, "details": details, "code": self.code, "stdout": self.stdout,
                "stderr": self.stderr, "start": self.start, "end": self.end}


class Cloud:
    def __init__(self, state_dir: Path, cfg: dict[str, Any]):
        self.state_dir = state_dir
        self.cfg = cfg
        self.region = cfg.get("region", "us-east-1")
        self.agent_delay = float(cfg.get("agent_delay", 3.0))
        self.propagation = float(cfg.get("route53_propagation", 1.0))
        self.relaunch_abandoned = bool(cfg.get("relaunch_abandoned", True))
        # "When you terminate an instance, it enters the shutting-down state and then the
        # terminated state": its OS (and SSM agent) still runs meanwhile.
        self.shutdown_seconds = float(cfg.get("shutdown_seconds", 2.0))
        # "Amazon EC2 Auto Scaling continuously monitors the health status of instances": how
        # long until it finds an instance that is no longer running (shortened).
        self.health_check_seconds = float(cfg.get("health_check_seconds", 1.0))
        net = cfg.get("network", {})
        self.gateway = net.get("gateway", "10.0.0.1")
        self.hosts = Hosts(state_dir, net.get("bridge", "lcbr0"), int(net.get("prefix", 16)), self.gateway)
        self.actions: dict[str, Action] = {}  # by instance id: the current one
        self.history: list[Action] = []
        self.invocations: dict[tuple[str, str], Invocation] = {}
        self.command_log = state_dir / "ssm-commands.jsonl"
        self.argv_bin = self.record_argv(state_dir)
        self.changes: dict[str, float] = {}  # Route 53 change id -> submitted
        self.faults: dict[str, Any] = {}
        # Events captured by the hold_events fault, delivered later by release_events.
        self.held_events: list[dict[str, Any]] = []
        self.offline_until: dict[str, float] = {}
        self.timeline_path = state_dir / "timeline.jsonl"
        self.t0 = time.time()
        self.port = 0
        self.lambdas = Lambdas(state_dir, self.region, self.record)
        self.lambdas.on_failure = self.failed_event
        self.sources: list[Any] = []  # SQS event source mappings (event_sources.py)
        self.alarm_topics: dict[str, Any] = {}  # cluster -> its alarm topic (alarms.py)
        self.alarmed: set[str] = set()  # clusters whose FailedInvocationsAlarm is in ALARM
        self.stopping = threading.Event()
        self.host_errors: dict[str, str] = {}
        self.api_calls: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []  # the custom events PutEvents took (services/events.py)
        self.stacks: dict[str, dict[str, Any]] = {}  # CloudFormation's view of each cluster's stack (services/cloudformation.py)
        self.iam = Authority(self.region, ACCOUNT)
        self.shared_storage: dict[str, Path] = {}  # cluster -> its file system's directory
        self.profiles: dict[str, tuple[str, str]] = {}  # group -> (its profile's role, that role's key)
        self.launched_in: dict[str, str] = {}  # instance -> the group that launched it
        self.launched_version: dict[str, int] = {}  # instance -> its launch template version
        self.refreshes: list[Any] = []  # instance refreshes (refresh.py)
        self.lost_zones: set[str] = set()  # Availability Zones lost by the zone-lost fault
        # Instances the groups' health check finds unhealthy although running: status checks
        # failing ("impaired": the host died), or a scheduled event ("scheduled-event").
        self.unhealthy: dict[str, str] = {}
        self.scheduled: dict[str, dict[str, Any]] = {}  # instance -> its scheduled event
        self.health_events: dict[str, dict[str, Any]] = {}  # instance -> AWS Health's event of it

    # -- timeline -----------------------------------------------------------
    def record(self, kind: str, **fields: Any) -> None:
        rec = {"t": round(time.time() - self.t0, 3), "ts": time.time(), "kind": kind, **fields}
        with open(self.timeline_path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    # -- API call accounting (for the benchmark) -----------------------------------
    def count_call(self, environ: dict[str, Any], req: Any, checks: list[Any]) -> str:
        """Records who called which operation: the functions (aws-sdk-rust), the instances'
        AWS CLI, or the test driver (boto3); the principal, its deployment and the resources
        the request touched. Returns the caller."""
        ua = environ.get("HTTP_USER_AGENT", "")
        caller = "function" if "aws-sdk-rust" in ua else "instance" if "aws-cli" in ua else "driver"
        # A status poll names its command: the load scenario bounds the polls of each command.
        command = req.params.get("CommandId") if req.service == "ssm" else None
        self.api_calls.append({"t": time.time(), "caller": caller, "service": req.service, "op": req.operation,
                               **({"command_id": command} if command else {}), **self.iam.describe(req, checks)})
        return caller

    # -- faults ---------------------------------------------------------------
    def take_fault(self, name: str) -> bool:
        """Consumes one occurrence of an injected fault."""
        with LOCK:
            n = self.faults.get(name, 0)
            if n:
                self.faults[name] = n - 1
                self.record("fault", name=name, left=n - 1)
                return True
        return False

    def deliver(self, event: dict[str, Any], instance: str | None = None) -> None:
        """EventBridge delivery; a lifecycle action's event is subject to the drop_event and
        hold_events faults (EC2's own events are not: the scenarios count lifecycle events)."""
        if event.get("source") != "aws.autoscaling":
            threading.Thread(target=self.lambdas.put_event, args=(event,), daemon=True).start()
            return
        if self.take_fault("drop_event"):
            self.record("event-dropped", instance=instance, detail_type=event.get("detail-type"))
            return
        if self.take_fault("hold_events"):
            with LOCK:
                self.held_events.append(event)
            self.record("event-held", instance=instance, detail_type=event.get("detail-type"))
            return
        threading.Thread(target=self.lambdas.put_event, args=(event,), daemon=True).start()

    def release_events(self, seed: int, copies: int = 1, spacing: float = 0.0) -> list[str]:
        """Delivers the held events, each `copies` times, in an order shuffled by `seed`,
        `spacing` seconds apart (EventBridge's duplicates do not all arrive at once)."""
        with LOCK:
            batch = [e for e in self.held_events for _ in range(copies)]
            self.held_events = []
        random.Random(seed).shuffle(batch)
        order = [f"{e['detail-type']}:{(e.get('detail') or {}).get('EC2InstanceId')}" for e in batch]
        self.record("events-released", seed=seed, order=order)
        def deliver() -> None:
            for i, e in enumerate(batch):
                if i and spacing:
                    time.sleep(spacing)
                self.lambdas.put_event(e)

        threading.Thread(target=deliver, daemon=True).start()
        return order

    # -- Auto Scaling ---------------------------------------------------------
    def backend(self):
        return asm.autoscaling_backends[ACCOUNT][self.region]

    def hook_for(self, group: str, transition: str):
        for h in self.backend().lifecycle_hooks.values():
            if h.auto_scaling_group_name == group and h.lifecycle_transition == transition:
                return h
        return None

    def on_launched(self, group, state) -> None:
        """Called (under LOCK) for every instance an Auto Scaling group launches."""
        iid = state.instance.id
        self.launched_in[iid] = group.name
        self.launched_version[iid] = self.group_version(group)
        hook = self.hook_for(group.name, "autoscaling:EC2_INSTANCE_LAUNCHING")
        self.record("instance-launched", instance=iid, group=group.name, ip=state.instance.private_ip)
        self.ec2_event(iid, STATE_CHANGE, {"state": "pending"})
        # The cluster's shared storage, mounted by the boot (user data) unless that mount fails.
        shared = self.shared_storage.get(self.group_tags(group.name).get("swarm:cluster", ""))
        if shared and self.take_fault("shared_storage_unmounted"):
            shared = None
        threading.Thread(target=self._start_host, args=(iid, state.instance.private_ip, shared), daemon=True).start()
        if hook:
            state.lifecycle_state = "Pending:Wait"
            self._open_action(group.name, hook, iid, "autoscaling:EC2_INSTANCE_LAUNCHING")
        else:
            state.lifecycle_state = "InService"

    @staticmethod
    def group_version(group) -> int:
        """The launch template version the group launches now ($Latest / $Default resolved)."""
        lt = group.ec2_launch_template
        return int(lt.get_version(group.launch_template_version).number) if lt else 0

    def lifecycle_state(self, iid: str) -> str | None:
        """The instance's lifecycle state in its group; None once the group has let it go."""
        _, state = self._find_state(iid)
        return state.lifecycle_state if state else None

    def in_service_count(self, group_name: str) -> int:
        g = self.backend().autoscaling_groups[group_name]
        return sum(s.lifecycle_state == "InService" for s in g.instance_states)

    def _start_host(self, iid: str, ip: str, shared: Path | None = None) -> None:
        try:
            self.hosts.create(iid, ip, shared)
            self.record("host-ready", instance=iid, ip=ip)
            self.ec2_event(iid, STATE_CHANGE, {"state": "running"})
        except Exception as e:  # noqa: BLE001 - reported, the instance stays agent-less
            self.host_errors[iid] = str(e)
            self.record("host-failed", instance=iid, error=str(e))

    def begin_terminate(self, group, state) -> None:
        iid = state.instance.id
        old = self.actions.pop(iid, None)
        if old and old.ended is None:
            old.ended, old.result, old.cause = time.time(), "ABANDON", "superseded"
        hook = self.hook_for(group.name, "autoscaling:EC2_INSTANCE_TERMINATING")
        self.record("instance-terminating", instance=iid, group=group.name)
        if hook:
            state.lifecycle_state = "Terminating:Wait"
            self._open_action(group.name, hook, iid, "autoscaling:EC2_INSTANCE_TERMINATING")
        else:
            self._finalize_termination(group, state)

    def _open_action(self, group: str, hook, iid: str, transition: str) -> None:
        now = time.time()
        hb = float(hook.heartbeat_timeout)
        a = Action(
            token=str(uuid.uuid4()), group=group, hook=hook.name, instance_id=iid, transition=transition,
            heartbeat_timeout=hb, default_result=hook.default_result, started=now, deadline=now + hb,
            global_deadline=now + min(100 * hb, 172800),
        )
        self.actions[iid] = a
        self.history.append(a)
        launching = a.launching
        detail = {
            "LifecycleActionToken": a.token,
            "AutoScalingGroupName": group,
            "LifecycleHookName": hook.name,
            "EC2InstanceId": iid,
            "LifecycleTransition": transition,
            "Origin": "EC2" if launching else "AutoScalingGroup",
            "Destination": "AutoScalingGroup" if launching else "EC2",
        }
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "EC2 Instance-launch Lifecycle Action" if launching else "EC2 Instance-terminate Lifecycle Action",
            "source": "aws.autoscaling",
            "account": ACCOUNT,
            "time": utc(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:autoscaling:{self.region}:{ACCOUNT}:autoScalingGroup:"
                          f"{uuid.uuid5(uuid.NAMESPACE_DNS, group)}:autoScalingGroupName/{group}"],
            "detail": detail,
        }
        self.record("hook-wait", instance=iid, group=group, transition="launch" if launching else "terminate", heartbeat_timeout=hb)
        self.deliver(event, instance=iid)

    def _find_state(self, iid: str):
        for g in self.backend().autoscaling_groups.values():
            for s in g.instance_states:
                if s.instance.id == iid:
                    return g, s
        return None, None

    def _end_action(self, a: Action, result: str, cause: str) -> None:
        a.ended, a.result, a.cause = time.time(), result, cause
        self.actions.pop(a.instance_id, None)
        group, state = self._find_state(a.instance_id)
        self.record("action-ended", instance=a.instance_id, transition="launch" if a.launching else "terminate",
                    result=result, cause=cause, waited=round(a.ended - a.started, 3))
        if state is None:
            return
        if a.launching and result == "CONTINUE":
            state.lifecycle_state = "InService"
        elif a.launching:
            # ABANDON of a launch: the instance is terminated and replaced.
            self._finalize_termination(group, state)
            if self.relaunch_abandoned:
                group.set_desired_capacity(group.desired_capacity)
        else:
            self._finalize_termination(group, state)

    def _finalize_termination(self, group, state) -> None:
        iid = state.instance.id
        state.lifecycle_state = "Terminating:Proceed"
        group.instance_states = [s for s in group.instance_states if s is not state]
        if state.instance._state.name in ("shutting-down", "terminated"):
            return  # EC2 took it already (out of band): the group only lets go of it
        self._shut_down(iid, group=group.name)

    def _shut_down(self, iid: str, **why: Any) -> None:
        """"When you terminate an instance, it enters the shutting-down state and then the
        terminated state": its OS (and agent) runs on for `shutdown_seconds`."""
        group = why.get("group") or self.launched_in.get(iid, "")
        if self.shutdown_seconds <= 0:
            self._terminated(iid, group)
            return
        self.record("instance-shutting-down", instance=iid, **why)
        self._set_state(iid, "shutting-down")
        self._later(self.shutdown_seconds, self._terminated, iid, group)

    def _terminated(self, iid: str, group: str) -> None:
        with LOCK:
            ec2 = self.ec2_backend()
            if ec2.get_instance(iid)._state.name == "terminated":
                return
            ec2.terminate_instances([iid])
        self.record("instance-terminated", instance=iid, group=group)
        self.ec2_event(iid, STATE_CHANGE, {"state": "terminated"})
        threading.Thread(target=self.hosts.destroy, args=(iid,), daemon=True).start()

    # -- EC2 outside Auto Scaling -------------------------------------------------
    def ec2_backend(self):
        return self.backend().ec2_backend

    def ec2_event(self, iid: str, detail_type: str, detail: dict[str, Any]) -> None:
        """An aws.ec2 event about one instance, in AWS's shape."""
        now = time.time()
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.ec2",
            "account": ACCOUNT, "time": utc(now).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.region,
            "resources": [f"arn:aws:ec2:{self.region}:{ACCOUNT}:instance/{iid}"],
            "detail": {"instance-id": iid, **detail},
        }
        self.record("ec2-event", instance=iid, detail_type=detail_type, detail=detail)
        self.deliver(event, instance=iid)

    def _ec2_state(self, iid: str) -> str:
        with LOCK:
            return self.ec2_backend().get_instance(iid)._state.name

    def _set_state(self, iid: str, name: str) -> None:
        with LOCK:
            self.ec2_backend().get_instance(iid)._state = Ec2InstanceState(name, STATE_CODES[name])
        self.ec2_event(iid, STATE_CHANGE, {"state": name})

    def _later(self, seconds: float, fn, *args: Any) -> None:
        t = threading.Timer(seconds, fn, args=args)
        t.daemon = True
        t.start()

    def terminate_out_of_band(self, iid: str, cause: str) -> bool:
        """EC2 terminates the instance itself (TerminateInstances, a Spot interruption): "it
        enters the shutting-down state and then the terminated state". Its group learns it from
        its health check. False: not running."""
        if self._ec2_state(iid) not in ("running", "stopping", "stopped"):
            return False
        self._shut_down(iid, cause=cause)
        self._later(self.health_check_seconds, self._health_check, iid)
        return True

    def stop_out_of_band(self, iid: str, force: bool = False) -> bool:
        """StopInstances: stopping (the OS shuts down), then stopped; the root volume stays.
        `force` ("the instances do not have an opportunity to flush file system caches"): the
        host dies at once, its agent with it."""
        if self._ec2_state(iid) != "running":
            return False
        self.record("instance-stopping", instance=iid, force=force)
        if force:
            self.hosts.kill_hard(iid)
        self._set_state(iid, "stopping")

        def stop() -> None:
            if not force:
                time.sleep(self.shutdown_seconds)
                self.hosts.stop(iid)
            self._set_state(iid, "stopped")
            self._health_check(iid)

        threading.Thread(target=stop, daemon=True).start()
        return True

    def start_out_of_band(self, iid: str) -> bool:
        """StartInstances: pending, the host boots from its volume, running."""
        if self._ec2_state(iid) != "stopped":
            return False
        self._set_state(iid, "pending")

        def start() -> None:
            try:
                self.hosts.start(iid)
            except Exception as e:  # noqa: BLE001 - reported; the instance stays agent-less
                self.host_errors[iid] = str(e)
                self.record("host-failed", instance=iid, error=str(e))
                return
            self.record("host-ready", instance=iid, restarted=True)
            self._set_state(iid, "running")

        threading.Thread(target=start, daemon=True).start()
        return True

    def _health_check(self, iid: str) -> None:
        """An instance that is not running, or whose status checks fail, is unhealthy: "If the
        instance status is any state other than running or if the system status is impaired,
        Auto Scaling considers the instance to be unhealthy"; "Amazon EC2 Auto Scaling creates a
        new scaling activity for terminating the unhealthy instance and then terminates it",
        through its terminate hook, and launches a replacement. Not while the group's
        HealthCheck process is suspended."""
        with LOCK:
            group, state = self._find_state(iid)
            if state is None or state.lifecycle_state.startswith("Terminating"):
                return
            ec2_state = state.instance._state.name
            if ec2_state in ("running", "pending") and iid not in self.unhealthy:
                return
            ec2_state = self.unhealthy.get(iid, ec2_state) if ec2_state == "running" else ec2_state
            if "HealthCheck" in getattr(group, "_suspended_processes", []):
                self.record("health-check-suspended", instance=iid, group=group.name, state=ec2_state)
                return
            self.record("health-check-failed", instance=iid, group=group.name, state=ec2_state)
            self.backend().terminate_instance(iid, should_decrement=False)

    def subnet_zone(self, subnet_id: str) -> str:
        return self.ec2_backend().get_subnet(subnet_id).availability_zone

    def lose_zone(self, zone: str) -> list[str]:
        """An Availability Zone lost at once: every host in it dies where it stands. Its
        instances stay "running" for EC2 with their status checks failing (impaired); the
        groups' health check replaces them through their terminate hooks, and the groups launch
        in the zones left ("If launch attempts fail in an Availability Zone, Auto Scaling
        attempts to launch instances in another healthy Availability Zone")."""
        with LOCK:
            self.lost_zones.add(zone)
            victims = [i.id for i in self.ec2_backend().all_instances()
                       if i.id in self.hosts.hosts and i._state.name == "running"
                       and i.subnet_id and self.subnet_zone(i.subnet_id) == zone]
        for iid in victims:
            self.hosts.kill_hard(iid)
            self.unhealthy[iid] = "impaired"
        self.record("zone-lost", zone=zone, instances=victims)
        for iid in victims:
            self._later(self.health_check_seconds, self._health_check, iid)
        return victims

    def schedule_change(self, iid: str, code: str, in_seconds: float) -> dict[str, Any]:
        """EC2 schedules an event for the instance (DescribeInstanceStatus lists it) and AWS
        Health announces it ("AWS Health Event", category scheduledChange). Its group "considers
        the instance to be unhealthy and replaces it. The instance doesn't start shutting down
        until the date and time that's specified in the timestamp is reached": at NotBefore the
        group terminates it through its terminate hook and launches its replacement."""
        start = time.time() + in_seconds
        event = {"InstanceEventId": f"instance-event-{uuid.uuid4().hex[:17]}", "Code": code,
                 "Description": "The instance is running on degraded hardware", "NotBefore": utc(start),
                 "NotAfter": utc(start + 7 * 86400)}
        self.scheduled[iid] = event
        with LOCK:
            _group, state = self._find_state(iid)
            if state is not None:
                state.health_status = "Unhealthy"
        type_code = HEALTH_TYPES[code]
        health = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": HEALTH, "source": "aws.health",
            "account": ACCOUNT, "time": utc().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.region,
            "resources": [iid],
            "detail": {"eventArn": f"arn:aws:health:{self.region}::event/EC2/{type_code}/{type_code}_{uuid.uuid4().hex[:12]}",
                       "service": "EC2", "eventTypeCode": type_code, "eventTypeCategory": "scheduledChange",
                       "eventScopeCode": "ACCOUNT_SPECIFIC", "startTime": utc(start).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                       # Health API, Event.statusCode: "The most recent status of the event.
                       # Possible values are open, closed, and upcoming."
                       "statusCode": "upcoming",
                       "eventDescription": [{"language": "en_US", "latestDescription": event["Description"]}],
                       "affectedEntities": [{"entityValue": iid}]},
        }
        self.health_events[iid] = health
        self.record("scheduled-change", instance=iid, code=code, not_before=round(start - self.t0, 3))
        self.deliver(health, instance=iid)

        def due() -> None:
            if event["Description"].startswith("["):  # "[Completed]" or "[Canceled]": over
                return
            self.unhealthy[iid] = "scheduled-event"
            self._health_check(iid)

        self._later(in_seconds, due)
        return {"InstanceEventId": event["InstanceEventId"], "NotBefore": start}

    def close_change(self, iid: str, started_ago: float) -> None:
        """The instance's scheduled change is over without taking it (maintenance done in
        place, or the change cancelled): EC2's event description begins "[Completed]", the
        instance is healthy again, and AWS Health sends the event's update with statusCode
        "closed" — its startTime, `started_ago` seconds back, now in the past."""
        event = self.scheduled[iid]
        event["Description"] = "[Completed] " + event["Description"]
        with LOCK:
            _group, state = self._find_state(iid)
            if state is not None:
                state.health_status = "Healthy"
        began = time.time() - started_ago
        health = json.loads(json.dumps(self.health_events[iid]))
        health.update({"id": str(uuid.uuid4()), "time": utc().strftime("%Y-%m-%dT%H:%M:%SZ")})
        health["detail"].update({"statusCode": "closed", "startTime": utc(began).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                                 "endTime": utc().strftime("%a, %d %b %Y %H:%M:%S GMT")})
        self.record("scheduled-change-closed", instance=iid)
        self.deliver(health, instance=iid)

    def spot_interrupt(self, iid: str, notice: float, action: str = "terminate") -> None:
        """The Spot service takes the instance back: the warning, then after `notice` seconds
        (two minutes on AWS) the termination or stop."""
        self.ec2_event(iid, SPOT_WARNING, {"instance-action": action})

        def interrupt() -> None:
            if action == "stop":
                self.stop_out_of_band(iid)
            else:
                self.terminate_out_of_band(iid, cause="spot-interruption")

        self._later(notice, interrupt)

    def action_for(self, params: dict[str, Any]) -> Action:
        iid = params.get("InstanceId")
        token = params.get("LifecycleActionToken")
        a = self.actions.get(iid) if iid else next((x for x in self.actions.values() if x.token == token), None)
        if (a is None or (token and a.token != token) or a.group != params.get("AutoScalingGroupName")
                or a.hook != params.get("LifecycleHookName")):
            what = f"instance ID {iid}" if iid else f"token {token}"
            raise AsValidationError(f"No active Lifecycle Action found with {what}")
        return a

    def tick(self) -> None:
        now = time.time()
        with LOCK:
            for a in list(self.actions.values()):
                if now >= min(a.deadline, a.global_deadline):
                    self._end_action(a, a.default_result, "timeout")
        self.lambdas.tick()

    # -- SSM --------------------------------------------------------------------
    def ping_status(self, iid: str) -> str | None:
        h = self.hosts.hosts.get(iid)
        if h is None or h.ready_at is None:
            return None  # the agent never registered
        if not h.alive:
            return "ConnectionLost"
        online_at = max(h.ready_at + self.agent_delay, self.offline_until.get(iid, 0))
        return "Online" if time.time() >= online_at else None

    @staticmethod
    def record_argv(state_dir: Path) -> Path:
        """Wrappers for the programs the scripts run that log each command line to argv.log:
        what `ps` shows every user of an instance, so the secrets scan covers it too."""
        bin_dir = state_dir / "argv-bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        search = f"/usr/sbin:/usr/bin:/sbin:/bin:{os.path.dirname(sys.executable)}"
        for prog in ("docker", "aws", "curl"):
            real = shutil.which(prog, path=search)
            if real is None:
                continue
            wrapper = bin_dir / prog
            wrapper.write_text(
                "#!/bin/sh\n"
                f"printf '%s %s\\n' \"$AWS_SSM_INSTANCE_ID\" \"{prog} $*\" >> '{state_dir / 'argv.log'}'\n"
                f"exec '{real}' \"$@\"\n"
            )
            wrapper.chmod(0o755)
        return bin_dir

    def instance_env(self, host) -> dict[str, str]:
        """The environment the SSM agent gives a script: the agent's own (a systemd service: the
        default PATH, no HOME, no AWS credentials or region) plus AWS_SSM_* (agent/executers/
        executers.go, prepareEnvironment). Credentials come from the instance metadata service.
        Two things are the simulation's: DOCKER_HOST (each host's dockerd has its own socket)
        and AWS_ENDPOINT_URL (the VPC's endpoint is this cloud); and the argv-recording
        wrappers stand first in PATH."""
        return {
            "PATH": f"{self.argv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DOCKER_HOST": f"unix://{host.sock}",
            "AWS_ENDPOINT_URL": f"http://{self.gateway}:{self.port}",
            "LANG": "C.UTF-8",
            # Set by the SSM agent for every Run Command script.
            "AWS_SSM_INSTANCE_ID": host.instance_id,
            "AWS_SSM_REGION_NAME": self.region,
            "AWS_SSM_PLATFORM_NAME": "Amazon Linux",
            "AWS_SSM_PLATFORM_VERSION": "2023",
        }

    # -- IAM: what a request's context needs from the cloud's state -----------------------
    def instance_tags(self, iid: str) -> dict[str, str]:
        with LOCK:
            ec2 = self.backend().ec2_backend
            return {t["key"]: t["value"] for t in ec2.describe_tags(filters={"resource-id": [iid]})}

    def group_arn(self, name: str) -> str | None:
        with LOCK:
            g = self.backend().autoscaling_groups.get(name)
            return g.arn if g else None

    def group_tags(self, name: str) -> dict[str, str]:
        with LOCK:
            g = self.backend().autoscaling_groups.get(name)
            return {t["Key"]: t["Value"] for t in g.tags} if g else {}

    def parameter_key(self, name: str) -> str | None:
        """The KMS key of a SecureString parameter (None: not one, or no such parameter)."""
        from moto.ssm.models import ssm_backends

        with LOCK:
            p = ssm_backends[ACCOUNT][self.region].get_parameter(name)
            return (p.keyid or "alias/aws/ssm") if p is not None and p.parameter_type == "SecureString" else None

    def load_iam(self, spec: dict[str, Any]) -> dict[str, str]:
        """Principals from the template (rendered with the scenario's parameters): each role's
        access key, and which group's instances carry which role."""
        from pathlib import Path as _P

        from .iam import TEMPLATE

        keys = self.iam.load(_P(spec.get("template") or TEMPLATE), spec.get("params", {}), spec.get("physical", {}))
        params = spec.get("params", {})
        topic = alarms.render_topic(_P(spec.get("template") or TEMPLATE), params, self.region, ACCOUNT)
        self.alarm_topics[str(params.get("ClusterName", ""))] = topic
        self.create_alarm_topic(topic)
        # Each deployment adds its own roles: two stacks in one account coexist.
        for group, role in spec.get("profiles", {}).items():
            self.profiles[group] = (role, keys[role])
        self.record("iam-loaded", cluster=spec.get("params", {}).get("ClusterName"), roles=sorted(keys),
                    profiles=dict(spec.get("profiles", {})))
        return keys

    def create_alarm_topic(self, topic: alarms.AlarmTopic) -> None:
        """The alarm topic (its policy when the stack sets one, else SNS's default) and its key
        in moto's SNS and KMS, as the stack creates them: deliveries then follow what SNS and
        KMS hold, so SetTopicAttributes or PutKeyPolicy by hand change them."""
        with LOCK:
            key = kms_backends[ACCOUNT][self.region].create_key(
                json.dumps(topic.key_policy), "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "alarm topic", None)
            attributes = {"KmsMasterKeyId": key.arn}
            if topic.topic_policy is not None:
                attributes["Policy"] = json.dumps(topic.topic_policy)
            sns_backends[ACCOUNT][self.region].create_topic(topic.arn.rsplit(":", 1)[1], attributes=attributes)
        topic.key_id = key.id

    def alarm_policies(self, topic: alarms.AlarmTopic) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The topic's access policy and its key's policy as SNS and KMS hold them now (None:
        the key named by the topic does not exist)."""
        with LOCK:
            held = sns_backends[ACCOUNT][self.region].get_topic(topic.arn)
            kms = kms_backends[ACCOUNT][self.region]
            key_id = str(getattr(held, "kms_master_key_id", "") or "")
            try:
                key_policy = json.loads(kms.get_key_policy(kms.get_key_id(key_id))) if key_id else None
            except ServiceException:
                key_policy = None
            return json.loads(held.policy), key_policy

    def failed_event(self, function: str, cluster: str) -> None:
        """An event reached the on-failure destination (the failure queue): its alarm fires once
        (ApproximateNumberOfMessagesVisible >= 1) and CloudWatch publishes to the alarm topic."""
        topic = self.alarm_topics.get(cluster)
        if topic is None or cluster in self.alarmed:
            return
        self.alarmed.add(cluster)
        delivered, reason = topic.deliver(alarms.CLOUDWATCH, topic.alarm_arn, *self.alarm_policies(topic))
        self.record("alarm", name="FailedInvocationsAlarm", cluster=cluster, function=function,
                    delivered=delivered, reason=reason)

    def forward_action_event(self, cluster: str, detail_type: str) -> None:
        """ActionEventsRule: a chosen action event published to the alarm topic by EventBridge."""
        topic = self.alarm_topics.get(cluster)
        if topic is None or detail_type not in topic.forwarded:
            return
        delivered, reason = topic.deliver(alarms.EVENTBRIDGE, topic.rule_arn, *self.alarm_policies(topic))
        self.record("sns-delivery", source="ActionEventsRule", cluster=cluster, detail_type=detail_type,
                    delivered=delivered, reason=reason)

    def metadata_for(self, ip: str) -> dict[str, Any] | None:
        """The instance metadata service's view of the instance at `ip`."""
        # A copy: hosts come and go on other threads (list() of a dict is atomic under the GIL).
        host = next((h for h in list(self.hosts.hosts.values()) if h.ip == ip), None)
        if host is None:
            return None
        # The profile belongs to the instance (its launch template), not to its place in the
        # group: a terminating or shutting-down instance keeps its credentials.
        group = self.launched_in.get(host.instance_id)
        role, key = self.profiles.get(group or "", (None, ""))
        return {"instance_id": host.instance_id, "region": self.region, "ip": ip, "role": role, "access_key": key}

    def execute(self, inv: Invocation, commands: list[str], timeout: float, workdir: str | None) -> None:
        host = self.hosts.hosts.get(inv.instance_id)
        inv.start = time.time()
        if host is None or not host.alive:
            inv.finish("Failed", "Undeliverable", -1)
            return
        inv.status = inv.details = "InProgress"
        if self.take_fault(f"fail_command:{inv.comment}"):
            inv.finish("Failed", "Failed", 1, stderr="injected failure")
            return
        delay = self.faults.pop(f"delay_command:{inv.comment}:{inv.instance_id}", 0)
        if delay:
            # The command is slow to start here (a busy host): it runs, late.
            self.record("fault", name=f"delay_command:{inv.comment}", instance=inv.instance_id, seconds=delay)
            time.sleep(float(delay))
            if not host.alive:
                inv.finish("Failed", "Terminated", -1)
                return
        if self.take_fault(f"hang_command:{inv.comment}"):
            # The script hangs (a stuck daemon, say): the execution timeout ends it, as on AWS.
            commands = ["exec sleep 2147483"]
        if self.take_fault(f"removed_by_a_copy:{inv.comment}:{inv.instance_id}"):
            # A copy of the same retirement (an event delivered twice) removes the node in the
            # instant between this script's check and its own `docker node rm`.
            self.record("fault", name=f"removed_by_a_copy:{inv.comment}", instance=inv.instance_id)
            commands = commands[:1] + [
                'docker() { if [ "${1:-} ${2:-}" = "node rm" ]; then '
                'command docker node rm --force "${@: -1}" >/dev/null 2>&1 || true; '
                # The copy's removal is done (inspect fails) before this script's own rm runs.
                'for _ in $(seq 50); do command docker node inspect "${@: -1}" >/dev/null 2>&1 || break; sleep 0.2; done; '
                'fi; command docker "$@"; }'
            ] + commands[1:]
        cmd_dir = host.root / "ssm" / inv.command_id
        cmd_dir.mkdir(parents=True, exist_ok=True)
        script = cmd_dir / "_script.sh"
        with FORK_LOCK:
            script.write_text("\n".join(commands) + "\n")
            script.chmod(0o700)
        # The agent runs `sh -c <script path>` (runshellscript.go: shellCommand "sh", shellArgs
        # "-c"): the kernel honours a #! line, otherwise sh (here dash, as on Debian/Ubuntu)
        # reads the file. The working directory is the command's own orchestration directory.
        argv = ["nsenter", "-t", str(host.init_pid), "-n", "-u", "-m", "-p", "--", "/bin/sh", "-c", str(script)]
        try:
            p = subprocess.Popen(argv, env=self.instance_env(host), cwd=workdir or str(cmd_dir),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = p.communicate(timeout=timeout)
                code = p.returncode
                status = details = "Success" if code == 0 else "Failed"
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                out, err = p.communicate()
                code, status, details = -1, "TimedOut", "ExecutionTimedOut"
        except OSError as e:
            out, err = b"", str(e).encode()
            code, status, details = -1, "Failed", "Failed"
        if not host.alive and status != "Success":
            details = "Terminated"
        inv.finish(status, details, code, out.decode(errors="replace")[:OUTPUT_LIMIT],
                   err.decode(errors="replace")[:OUTPUT_LIMIT])
        with open(self.command_log, "a") as f:
            f.write(json.dumps({"command_id": inv.command_id, "instance": inv.instance_id, "comment": inv.comment,
                                "status": inv.status, "code": inv.code, "stdout": inv.stdout, "stderr": inv.stderr}) + "\n")
        self.record("command", instance=inv.instance_id, comment=inv.comment, status=inv.status, code=inv.code,
                    seconds=round(inv.end - inv.start, 2), command_id=inv.command_id, requested=inv.requested)

    # -- state for tests and the demo -----------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with LOCK:
            groups = {
                g.name: [{"id": s.instance.id, "ip": s.instance.private_ip, "lifecycle": s.lifecycle_state}
                         for s in g.instance_states]
                for g in self.backend().autoscaling_groups.values()
            }
            return {
                "groups": groups,
                "hosts": {iid: {"ip": h.ip, "sock": h.sock, "alive": h.alive, "ready": h.ready_at is not None,
                                "agent": self.ping_status(iid), "netns": h.netns, "hostname": h.hostname}
                          # A copy: 15 hosts torn down at once changed the dict mid-iteration.
                          for iid, h in list(self.hosts.hosts.items())},
                "actions": [a.public() for a in self.history],
                "changes": self.changes,
                "lambda_busy": self.lambdas.busy(),
                "functions": sorted(self.lambdas.functions),
                "host_errors": self.host_errors,
                "faults": self.faults,
            }
