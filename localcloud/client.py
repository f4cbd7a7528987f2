"""Driving the local cloud: start it, create a swarm cluster through the AWS APIs, deploy the
real function binaries, and observe swarm, DNS and lifecycle state. Used by the demo, the
end-to-end tests and the benchmark."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from . import world
from .iam import ADMIN_KEY, FUNCTION_ROLES, INSTANCE_ROLES, alarm_topic_arn, key_id

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
LAUNCH = "EC2 Instance-launch Lifecycle Action"
TERMINATE = "EC2 Instance-terminate Lifecycle Action"
# The template's DrainCheckFunction Timeout and its DrainChecks queue's VisibilityTimeout.
DRAIN_CHECK_TIMEOUT = 60


# The template's functions (logical ids) as the local cloud names them.
STACK_FUNCTIONS = {"LaunchFunction": "launch-hook", "TerminateFunction": "terminate-hook", "EcsFunction": "ecs-state-change",
                   "NoticeFunction": "instance-notice", "SpotNoticeFunction": "spot-notice",
                   "ScheduledChangeFunction": "scheduled-change", "ReconcileFunction": "reconcile",
                   "DrainCheckFunction": "drain-check"}


# The template's pattern rules (logical ids): named by the local cloud as `rule_name` says.
STACK_RULES = ("LaunchRule", "TerminateRule", "EcsRule", "SpotRule", "InstanceStateRule", "ScheduledChangeRule")


def permission(r: Any, logical: str, res: dict[str, Any]) -> dict[str, str]:
    """An AWS::Lambda::Permission rendered: the function (FunctionName is a name or an ARN), its
    statement id (CloudFormation's is generated: the logical id here), the rule's ARN."""
    props = r.resolve(res["Properties"])
    return {"function": str(props["FunctionName"]).rsplit(":function:", 1)[-1], "statement_id": logical,
            "source_arn": props["SourceArn"]}


class Timeout(AssertionError):
    pass


def leftovers_on_machine() -> list[str]:
    """Host processes, namespaces and links of a local cloud that still exist."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"/tmp/{world.hosts_root_prefix()}" in cmd:
                out.append(f"process {proc.name}: {cmd[:80]}")
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    out += [f"netns {n}" for n in ns if n.startswith(world.netns_prefix())]
    return out


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.2,
             longest: float = 0.5) -> Any:
    """Polls `cond` until it returns something truthy; fails with `what` after `timeout` s. The
    interval grows from `interval` to `longest`: a condition that reads the swarm (two docker
    CLI runs and three requests to the cloud) polled every 0.2 s for the length of a join or a
    drain was a third of a core on a machine the scenarios already share."""
    end = time.time() + timeout
    last: Any = None
    while time.time() < end:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - a condition that cannot be read yet is not met
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
        interval = max(interval, min(interval * 1.25, longest))
    raise Timeout(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Timing:
    """Time constants: the demo and tests shorten AWS's defaults."""
    dns_ttl: int = 5
    hold_extra: int = 5
    agent_delay: float = 3.0
    propagation: float = 1.0
    launch_heartbeat: int = 300
    join_budget: int = 120
    agent_wait: int = 90
    drain_timeout: int = 60
    reconcile_grace: int = 5
    shutdown: float = 2.0  # seconds an instance stays shutting-down (its OS still runs)
    spot_notice: int = 30  # a Spot warning's notice: two minutes on AWS
    scheduled_lead: int = 20  # a scheduled change's node leaves this long before it begins

    @property
    def hold(self) -> int:
        return self.dns_ttl + self.hold_extra


@dataclass
class Cluster:
    name: str
    manager_group: str
    worker_group: str
    zone_id: str
    dns_name: str
    vpc_id: str
    subnet_id: str
    shared_storage: bool = False  # SharedStorage=efs: every node mounts it at /cluster
    service_suffix: str = ""  # ServiceRecordSuffix: services' names under it


@dataclass
class LocalCloud:
    state_dir: Path
    proc: subprocess.Popen
    endpoint: str
    timing: Timing
    cluster: Cluster | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    role_keys: dict[str, str] = field(default_factory=dict)  # template role -> its access key
    prefix: str = ""  # of this deployment's rule and log names ("" for the first)
    stack_params: dict[str, Any] = field(default_factory=dict)  # the cluster stack's parameters given

    # -- lifecycle ----------------------------------------------------------------
    @classmethod
    def start(cls, timing: Timing | None = None, state_dir: Path | None = None, **cfg: Any) -> LocalCloud:
        timing = timing or Timing()
        state_dir = state_dir or Path(tempfile.mkdtemp(prefix="localcloud-"))
        state_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "localcloud", "clean"], cwd=ROOT, capture_output=True)
        conf = {"agent_delay": timing.agent_delay, "route53_propagation": timing.propagation,
                "shutdown_seconds": timing.shutdown, **cfg}
        (state_dir / "config.json").write_text(json.dumps(conf))
        log = open(state_dir / "cloud.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "serve", "--state-dir", str(state_dir), "--config", str(state_dir / "config.json")],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        ep = state_dir / "endpoint"
        try:
            wait_for(lambda: ep.exists() or proc.poll() is not None, 60, "the local cloud to listen")
        except Timeout:
            proc.kill()
            raise
        if proc.poll() is not None:
            raise RuntimeError(f"local cloud exited: {(state_dir / 'cloud.log').read_text()[-3000:]}")
        return cls(state_dir=state_dir, proc=proc, endpoint=ep.read_text().strip(), timing=timing)

    def stop(self) -> list[str]:
        """Stops the cloud; returns what its own teardown left behind (then removes that too)."""
        hung: list[str] = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGUSR1)  # its threads' stacks into cloud.log
                time.sleep(1)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                hung = ["the cloud did not exit within 60 s of SIGTERM (its threads' stacks: cloud.log)"]
        leftovers = leftovers_on_machine()
        subprocess.run([sys.executable, "-m", "localcloud", "clean", "--state-dir", str(self.state_dir)], cwd=ROOT, capture_output=True)
        return hung + leftovers

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- AWS clients and the control API ---------------------------------------------------
    def client(self, service: str):
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service, endpoint_url=self.endpoint, region_name=REGION,
                aws_access_key_id=ADMIN_KEY, aws_secret_access_key="test",
                config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self.clients[service]

    def control(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_localcloud/{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def state(self) -> dict[str, Any]:
        return self.control("state")

    def function_env(self) -> dict[str, str]:
        t = self.timing
        c = self.cluster
        assert c is not None
        return {
            "CLUSTER_NAME": c.name,
            "HOSTED_ZONE_ID": c.zone_id.split("/")[-1],
            "DNS_TTL_SECONDS": str(t.dns_ttl),
            "HOLD_EXTRA_SECONDS": str(t.hold_extra),
            "AGENT_WAIT_SECONDS": str(t.agent_wait),
            "LAUNCH_HEARTBEAT_TIMEOUT_SECONDS": str(t.launch_heartbeat),
            "JOIN_BUDGET_SECONDS": str(t.join_budget),
            "DRAIN_TIMEOUT_SECONDS": str(t.drain_timeout),
            "BLOCKED_DRAIN": "wait",  # the template's BlockedDrain default
            "COMMAND_TIMEOUT_SECONDS": "60",
            "POLL_MAX_SECONDS": "1",
            "RECONCILE_GRACE_SECONDS": str(t.reconcile_grace),
            "SPOT_NOTICE_SECONDS": str(t.spot_notice),
            "SCHEDULED_CHANGE_LEAD_SECONDS": str(t.scheduled_lead),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_SECRET_ACCESS_KEY": "role-session",
            "AWS_SESSION_TOKEN": "role-session",
            "AWS_REGION": REGION,
            "TOKEN_KMS_KEY": f"alias/swarm-{c.name}-tokens",  # as the template sets it
            "ACTION_EVENT_BUS": "default",  # the template's ActionEventBus default
            # The template's SHARED_STORAGE_PATH: /cluster with SharedStorage=efs.
            "SHARED_STORAGE_PATH": "/cluster" if c.shared_storage else "",
            "SERVICE_RECORD_SUFFIX": c.service_suffix,  # the template's ServiceRecordSuffix
        }

    def operator_env(self) -> dict[str, str]:
        """The environment of the operator's command (`swarm-lifecycle`) on this cluster, signed as
        the template's OperatorRole, with the functions' time settings (the record's TTL is one:
        another TTL would be drift)."""
        c = self.cluster
        assert c is not None
        env = {k: v for k, v in self.function_env().items() if k.endswith("_SECONDS")}
        env.update({
            "PATH": "/usr/bin:/bin", "HOME": str(self.state_dir), "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.role_keys["OperatorRole"], "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test", "AWS_REGION": REGION,
            "SWARM_CLUSTER": c.name, "SWARM_HOSTED_ZONE_ID": c.zone_id.split("/")[-1],
        })
        if c.service_suffix:
            env["SWARM_SERVICE_RECORD_SUFFIX"] = c.service_suffix  # the stack's ServiceRecordSuffix
        return env

    def published(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """The custom events EventBridge took (of one detail-type), in order."""
        return [e for e in self.control("published") if detail_type in (None, e["detail-type"])]

    def denials(self) -> list[dict[str, Any]]:
        """Every request the cloud refused on IAM's grounds, with principal, action, resource."""
        return self.control("iam-report")["denials"]

    def deploy(self, bin_dir: Path, extra_env: dict[str, str] | None = None, schedule_seconds: float | None = None,
               concurrency: dict[str, int] | None = None, max_event_age: dict[str, int] | None = None,
               **spec: Any) -> None:
        """Deploys the functions and their EventBridge rules, as the template does: launches and
        terminations go to two functions of the one lifecycle-hook binary, so a termination
        never waits behind joins; both log to one group. `concurrency` (reserved) and
        `max_event_age` (EventInvokeConfig's MaximumEventAgeInSeconds): per function; the
        notice function's age is the Spot notice, as the template's 120 s is AWS's two minutes."""
        ages = {"instance-notice": self.timing.spot_notice, "spot-notice": self.timing.spot_notice,
                **(max_event_age or {})}
        c = self.cluster
        assert c is not None
        env = {**self.function_env(), **(extra_env or {})}
        checks_url = self.drain_check_queue()
        binaries = {"launch-hook": "lifecycle-hook", "terminate-hook": "lifecycle-hook",
                    "ecs-state-change": "ecs-state-change", "instance-notice": "instance-notice",
                    "spot-notice": "instance-notice",
                    "scheduled-change": "scheduled-change", "reconcile": "reconcile", "drain-check": "drain-check"}
        for name, binary in binaries.items():
            # Each function runs with its own role's credentials, as Lambda gives them.
            role_env = {"AWS_ACCESS_KEY_ID": self.role_keys[FUNCTION_ROLES[name]]}
            if name == "terminate-hook":
                # The template's TerminateConcurrency, as the reserved concurrency here.
                role_env["TERMINATE_CONCURRENCY"] = str((concurrency or {}).get(name, 20))
            if name in ("terminate-hook", "drain-check"):
                role_env["DRAIN_CHECK_QUEUE_URL"] = checks_url  # the template's DrainChecks queue
            # The template's DrainCheckFunction logs to the hook functions' group, with a Timeout
            # its queue's visibility timeout covers.
            log_group = self.prefix + ("lifecycle-hook" if name == "drain-check" else binary)
            timeout = DRAIN_CHECK_TIMEOUT if name == "drain-check" else spec.get("timeout", 300)
            self.control("deploy", {"name": self.fn(name), "binary": str(bin_dir / binary),
                                    "role": f"arn:aws:iam::123456789012:role/{self.function_role(FUNCTION_ROLES[name])}",
                                    "env": {**env, **role_env}, "log_group": log_group,
                                    "timeout": timeout,
                                    "concurrency": (concurrency or {}).get(name, 20),
                                    "max_event_age": ages.get(name, 21600),
                                    "retries": spec.get("retries", 2), "retry_delays": spec.get("retry_delays", [1.0, 2.0]),
                                    # The template's LoggingConfig: ApplicationLogLevel (LogLevel) and LogFormat.
                                    "log_level": spec.get("log_level", "INFO"), "log_format": spec.get("log_format", "JSON")})
        self.control("event-source", {"function": self.fn("drain-check"), "queue": self.drain_check_queue_name,
                                      "batch_size": 1})
        # The template's own rules (their patterns, targets and dead-letter queue) and the
        # functions' invoke permissions, as the stack creates them: a pattern or a permission
        # edited in the template is what the scenarios run against.
        self.client("sqs").create_queue(QueueName=self.undelivered_queue_name)
        self.client("sqs").create_queue(QueueName=f"swarm-{c.name}-failed-invocations")  # the on-failure destination
        rules = self.stack_rules()
        for rule in rules:
            self.control("rules", rule)
        for permission in self.stack_permissions():
            self.control("permission", permission)
        self.control("stack", self.stack_view(rules, with_schedule=bool(schedule_seconds)))
        if schedule_seconds:
            self.control("rules", {"name": self.rule_name("ReconcileRule"), "function": self.fn("reconcile"),
                                   "schedule_seconds": schedule_seconds})

    @property
    def drain_check_queue_name(self) -> str:
        assert self.cluster
        return f"swarm-{self.cluster.name}-drain-checks"

    def drain_check_queue(self) -> str:
        """The template's DrainChecks queue and its dead-letter queue (created once; the same
        attributes again are no error): returns its URL."""
        sqs = self.client("sqs")
        dlq = sqs.create_queue(QueueName=self.drain_check_queue_name + "-failed",
                               Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return sqs.create_queue(QueueName=self.drain_check_queue_name, Attributes={
            "VisibilityTimeout": str(DRAIN_CHECK_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        })["QueueUrl"]

    def drain_checks_failed(self) -> int:
        """Messages in the drain checks' dead-letter queue (its alarm's metric)."""
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=self.drain_check_queue_name + "-failed")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def roll(self, role: str, **launch_template_data: Any) -> str:
        """What a stack update that changes the launch template does: a new version of it
        (`launch_template_data`, e.g. ImageId=...), then the instance refresh that the group's
        UpdatePolicy in infra/template.yaml asks for. Returns the refresh's id."""
        from localcloud.iam import refresh_preferences

        c = self.cluster
        assert c is not None
        self.client("ec2").create_launch_template_version(LaunchTemplateName=f"{c.name}-node", SourceVersion="$Latest",
                                                          LaunchTemplateData=launch_template_data)
        group, lid = (c.manager_group, "ManagerGroup") if role == "manager" else (c.worker_group, "WorkerGroup")
        prefs = refresh_preferences(ROOT / "infra" / "template.yaml", lid, {"ManagerCount": str(len(self.in_service("manager")))})
        asg = self.client("autoscaling")
        return asg.start_instance_refresh(AutoScalingGroupName=group, Strategy="Rolling", Preferences=prefs)["InstanceRefreshId"]

    def refresh(self, role: str, refresh_id: str) -> dict[str, Any]:
        c = self.cluster
        assert c is not None
        group = c.manager_group if role == "manager" else c.worker_group
        return self.client("autoscaling").describe_instance_refreshes(
            AutoScalingGroupName=group, InstanceRefreshIds=[refresh_id])["InstanceRefreshes"][0]

    def reconcile(self, payload: dict[str, Any] | None = None, timeout: float = 180) -> dict[str, Any]:
        """Runs the reconcile function once (as its schedule would) and returns its response."""
        before = len(self.control("invocations"))
        event = payload if payload is not None else {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:123456789012:rule/reconcile"], "detail": {}}
        rid = self.control("invoke", {"function": self.fn("reconcile"), "payload": event})["request_id"]
        inv = wait_for(lambda: next((i for i in self.control("invocations")[before:] if i["request_id"] == rid), None),
                       timeout, "the reconcile to finish")
        assert inv["result"] == "ok", inv
        return inv["response"]

    # -- the cluster ---------------------------------------------------------------------------
    def create_cluster(self, name: str = "demo", dns_name: str | None = None, manager_tags: dict[str, str] | None = None,
                       template: Path | None = None, share: Cluster | None = None, zones: int = 1,
                       params: dict[str, str] | None = None) -> Cluster:
        """The cluster's resources through the AWS APIs, and the template's IAM (roles, instance
        profiles, the token key's policy) rendered with its parameters and enforced from now on.
        `share`: another deployment's cluster whose VPC, subnets and private zone this one uses.
        `zones`: the groups span that many Availability Zones (a subnet each). `params`: more of the
        template's parameters (e.g. ActionEventsToAlarms)."""
        ec2, asg, r53 = self.client("ec2"), self.client("autoscaling"), self.client("route53")
        if share:
            vpc, subnet, zone = share.vpc_id, share.subnet_id, share.zone_id
        else:
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            cidrs = ["10.0.0.0/16"] if zones == 1 else [f"10.0.{64 * k}.0/18" for k in range(zones)]
            subnet = ",".join(ec2.create_subnet(VpcId=vpc, CidrBlock=c, AvailabilityZone=f"{REGION}{'abc'[k]}")["Subnet"]["SubnetId"]
                              for k, c in enumerate(cidrs))
            zone = r53.create_hosted_zone(Name="swarm.internal", CallerReference=str(uuid.uuid4()),
                                          HostedZoneConfig={"PrivateZone": True, "Comment": "swarm"},
                                          VPC={"VPCRegion": REGION, "VPCId": vpc})["HostedZone"]["Id"]
        ami = ec2.describe_images()["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName=f"{name}-node", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"})
        dns_name = dns_name or f"managers.{name}.swarm.internal"
        t = self.timing
        # The time parameters as the functions' environment has them (function_env).
        # The stack is named after the cluster (its AWS::StackName in the roles' policies too).
        self.stack_params = {"StackName": name, "ClusterName": name, "HostedZoneId": zone.split("/")[-1], "ManagerRecordName": dns_name,
                             "DnsTtl": t.dns_ttl, "HoldExtra": t.hold_extra, "AgentWait": t.agent_wait,
                             "JoinBudget": t.join_budget, "DrainTimeout": t.drain_timeout, "ReconcileGrace": t.reconcile_grace,
                             "LaunchHookTimeout": t.launch_heartbeat, "TerminateHookTimeout": t.hold, **(params or {})}
        self.role_keys = self.control("iam", {
            "template": str(template) if template else None,
            "params": self.stack_params,
            "profiles": {f"{name}-managers": INSTANCE_ROLES["manager"], f"{name}-workers": INSTANCE_ROLES["worker"]},
        })["keys"]
        groups = {}
        for role in ("manager", "worker"):
            g = f"{name}-{role}s"
            tags = {"swarm:cluster": name, "swarm:role": role}
            if role == "manager":
                tags["swarm:dns-name"] = dns_name
                tags.update(manager_tags or {})
            asg.create_auto_scaling_group(
                AutoScalingGroupName=g, MinSize=0, MaxSize=20, DesiredCapacity=0, VPCZoneIdentifier=subnet,
                LaunchTemplate={"LaunchTemplateName": f"{name}-node", "Version": "$Latest"},
                Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": g, "ResourceType": "auto-scaling-group"}
                      for k, v in tags.items()])
            asg.put_lifecycle_hook(LifecycleHookName="swarm-launch", AutoScalingGroupName=g,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                                   HeartbeatTimeout=t.launch_heartbeat, DefaultResult="ABANDON")
            asg.put_lifecycle_hook(LifecycleHookName="swarm-terminate", AutoScalingGroupName=g,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                   HeartbeatTimeout=t.hold, DefaultResult="CONTINUE")
            groups[role] = g
        self.client("ecs").create_cluster(clusterName=name)
        shared = (params or {}).get("SharedStorage") == "efs"
        if shared:
            self.control("shared-storage", {"cluster": name})
        self.cluster = Cluster(name, groups["manager"], groups["worker"], zone, dns_name, vpc, subnet, shared,
                               (params or {}).get("ServiceRecordSuffix", ""))
        return self.cluster

    def add_cluster(self, name: str, bin_dir: Path, params: dict[str, str] | None = None, **deploy: Any) -> LocalCloud:
        """A second deployment in the same account: its own cluster (sharing this one's VPC,
        subnet and zone; `params`: more of its template's parameters), its own roles, functions
        and rules. Returns its view of the cloud."""
        assert self.cluster
        other = dataclasses.replace(self, cluster=None, role_keys={}, prefix=f"{name}-", clients=self.clients)
        other.create_cluster(name, share=self.cluster, params=params)
        other.deploy(bin_dir, **deploy)
        return other

    # -- worker groups of their own stacks (infra/worker-group.yaml) ------------------------
    def stack_renderer(self, physical: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
        """infra/template.yaml and a renderer with this cluster's parameters and ids (the stack is
        named after the cluster; its functions by the local names, its ECS cluster this one's)."""
        from .iam import template_renderer

        c = self.cluster
        assert c is not None
        ami = self.client("ec2").describe_images()["Images"][0]["ImageId"]
        arn = f"arn:aws:lambda:{REGION}:123456789012:function:"
        return template_renderer(
            ROOT / "infra" / "template.yaml",
            {**self.stack_params, "StackName": c.name, "ClusterName": c.name, "SubnetIds": c.subnet_id, "ImageId": ami,
             "LaunchHookTimeout": str(self.timing.launch_heartbeat), "TerminateHookTimeout": str(self.timing.hold),
             "EcsClusterArn": f"arn:aws:ecs:{REGION}:123456789012:cluster/{c.name}"},
            physical={"NodeSecurityGroup": f"sg-{c.name}-nodes",
                      **{logical: self.fn(name) for logical, name in STACK_FUNCTIONS.items()}, **(physical or {})},
            attributes={"WorkerProfile.Arn": f"arn:aws:iam::123456789012:instance-profile/{c.name}-workers",
                        **{f"{logical}.Arn": arn + self.fn(name) for logical, name in STACK_FUNCTIONS.items()},
                        **{f"{logical}.Arn": f"arn:aws:events:{REGION}:123456789012:rule/{self.rule_name(logical)}"
                           for logical in (*STACK_RULES, "ReconcileRule")},
                        "UndeliveredEvents.Arn": f"arn:aws:sqs:{REGION}:123456789012:{self.undelivered_queue_name}"})

    def function_role(self, role: str) -> str:
        """A function role's name (the template's logical id; a second deployment's prefixed)."""
        return f"{self.prefix}{role}"

    def fn(self, name: str) -> str:
        """A function of the cluster's stack by its short name (launch-hook, reconcile, ...), named
        as the template names it: FunctionName "swarm-${ClusterName}-<name>"."""
        assert self.cluster
        return f"swarm-{self.cluster.name}-{name}"

    def short(self, function: str) -> str:
        """A function's short name (its role in FUNCTION_ROLES, its key in `deploy`'s options)."""
        assert self.cluster
        return function.removeprefix(f"swarm-{self.cluster.name}-")

    @property
    def undelivered_queue_name(self) -> str:
        """The template's UndeliveredEvents queue (its rules' dead-letter queue)."""
        assert self.cluster
        return f"swarm-{self.cluster.name}-undelivered-events"

    def rule_name(self, logical: str) -> str:
        """A rule of the stack (named after the cluster) by its logical id (CloudFormation adds
        a random suffix)."""
        assert self.cluster
        return f"{self.cluster.name}-{logical}"

    def cluster_exports(self) -> dict[str, str]:
        """The cluster stack's exports (infra/template.yaml's Outputs that carry an Export),
        rendered with this cloud's ids: what a worker group's stack imports."""
        t, r = self.stack_renderer()
        return {r.resolve(o["Export"]["Name"]): r.resolve(o["Value"]) for o in t["Outputs"].values() if "Export" in o}

    def stack_rules(self) -> list[dict[str, Any]]:
        """The template's rules that select events of the default bus by pattern (its condition
        holding), rendered: each with its one target function and dead-letter queue. Named
        `<stack>-<logical id>` (CloudFormation adds a random suffix to that)."""
        c = self.cluster
        assert c is not None
        t, r = self.stack_renderer()
        out = []
        for logical, res in t["Resources"].items():
            props = res.get("Properties") or {}
            if res["Type"] != "AWS::Events::Rule" or "EventPattern" not in props or "EventBusName" in props:
                continue
            if "Condition" in res and not r.condition(res["Condition"]):
                continue
            props = r.resolve(props)
            (target,) = props["Targets"]
            out.append({"name": self.rule_name(logical), "description": props.get("Description"),
                        "pattern": props["EventPattern"], "function": target["Arn"].rsplit(":function:", 1)[1],
                        "target_id": target["Id"], "dead_letter_arn": (target.get("DeadLetterConfig") or {}).get("Arn")})
        return out

    def stack_view(self, rules: list[dict[str, Any]], with_schedule: bool) -> dict[str, Any]:
        """What CloudFormation says of the cluster's stack (services/cloudformation.py): every
        template parameter with its value (NoEcho ones masked, as DescribeStacks masks them), the
        outputs that name only what the local cloud creates, and the physical ids of the
        resources it created: the rules, the functions, the groups, the queues."""
        c = self.cluster
        assert c is not None
        sqs = self.client("sqs")
        queues = {logical: sqs.get_queue_url(QueueName=name)["QueueUrl"] for logical, name in (
            ("UndeliveredEvents", self.undelivered_queue_name), ("FailedInvocations", f"swarm-{c.name}-failed-invocations"),
            ("DrainChecks", self.drain_check_queue_name),
            ("DrainChecksFailed", self.drain_check_queue_name + "-failed"))}
        t, r = self.stack_renderer({**queues, "ManagerGroup": c.manager_group, "WorkerGroup": c.worker_group})
        declared = t.get("Parameters") or {}
        token_alias = r.resolve(t["Resources"]["TokenKeyAlias"]["Properties"]["AliasName"])
        topic = alarm_topic_arn(REGION, "123456789012", c.name)  # the local cloud's (cloud.create_alarm_topic)
        alarm_key = self.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
        params = [{"ParameterKey": k, "ParameterValue": "****" if v.get("NoEcho") else str(r.params[k])}
                  for k, v in declared.items()]
        outputs = []
        for key, o in (t.get("Outputs") or {}).items():
            if "Condition" in o and not r.condition(o["Condition"]):
                continue
            try:
                value = r.resolve(o["Value"])
            except KeyError:
                continue  # names a resource the local cloud does not create
            outputs.append({"OutputKey": key, "OutputValue": ",".join(value) if isinstance(value, list) else str(value),
                            **({"ExportName": r.resolve(o["Export"]["Name"])} if "Export" in o else {})})
        resources = [
            *({"LogicalResourceId": rule["name"].removeprefix(f"{c.name}-"), "PhysicalResourceId": rule["name"],
               "ResourceType": "AWS::Events::Rule"} for rule in rules),
            *({"LogicalResourceId": "ReconcileRule", "PhysicalResourceId": self.rule_name("ReconcileRule"),
               "ResourceType": "AWS::Events::Rule"} for _ in range(with_schedule)),
            *({"LogicalResourceId": logical, "PhysicalResourceId": self.fn(name), "ResourceType": "AWS::Lambda::Function"}
              for logical, name in STACK_FUNCTIONS.items()),
            # The functions' execution roles, named as their functions' Role ARNs name them.
            *({"LogicalResourceId": role, "PhysicalResourceId": self.function_role(role), "ResourceType": "AWS::IAM::Role"}
              for role in sorted(set(FUNCTION_ROLES.values()))),
            {"LogicalResourceId": "ManagerGroup", "PhysicalResourceId": c.manager_group,
             "ResourceType": "AWS::AutoScaling::AutoScalingGroup"},
            {"LogicalResourceId": "WorkerGroup", "PhysicalResourceId": c.worker_group,
             "ResourceType": "AWS::AutoScaling::AutoScalingGroup"},
            *({"LogicalResourceId": logical, "PhysicalResourceId": url, "ResourceType": "AWS::SQS::Queue"}
              for logical, url in queues.items()),
            {"LogicalResourceId": "AlarmTopic", "PhysicalResourceId": topic, "ResourceType": "AWS::SNS::Topic"},
            {"LogicalResourceId": "AlarmKey", "PhysicalResourceId": alarm_key.rsplit("/", 1)[-1],
             "ResourceType": "AWS::KMS::Key"},
            {"LogicalResourceId": "TokenKeyAlias", "PhysicalResourceId": token_alias, "ResourceType": "AWS::KMS::Alias"},
            {"LogicalResourceId": "TokenKey", "PhysicalResourceId": key_id(token_alias), "ResourceType": "AWS::KMS::Key"},
        ]
        return {"StackName": c.name, "Parameters": params, "Outputs": outputs, "Resources": resources}

    def stack_permissions(self) -> list[dict[str, str]]:
        """The template's AWS::Lambda::Permission resources that let EventBridge invoke a
        function (its condition holding), rendered: function, statement id, rule ARN."""
        t, r = self.stack_renderer()
        return [permission(r, logical, res) for logical, res in t["Resources"].items()
                if res["Type"] == "AWS::Lambda::Permission" and res["Properties"].get("Principal") == "events.amazonaws.com"
                and ("Condition" not in res or r.condition(res["Condition"]))]

    def add_worker_group(self, name: str, **params: Any) -> str:
        """What deploying infra/worker-group.yaml (GroupName=name, `params`) against this cluster's
        stack creates, rendered from that template: its launch template, its two rules to the
        cluster's functions, and the group with its hooks and tags (CloudFormation creates the
        hooks with the group, so its first launches wait in them). The launch template's instance
        profile is the cluster's worker profile (the local cloud gives the group's instances the
        WorkerRole); security groups are not imitated. Returns the group's name."""
        from .iam import template_renderer

        c = self.cluster
        assert c is not None
        t, r = template_renderer(ROOT / "infra" / "worker-group.yaml",
                                 {"ClusterStack": c.name, "GroupName": name, **{k: str(v) for k, v in params.items()}},
                                 physical={"LaunchTemplate": f"{c.name}-workers-{name}"},
                                 attributes={"LaunchTemplate.LatestVersionNumber": "$Latest",
                                             **{f"{rule}.Arn": f"arn:aws:events:{REGION}:123456789012:rule/{c.name}-workers-{name}-{rule}"
                                                for rule in ("LaunchRule", "TerminateRule")}},
                                 exports=self.cluster_exports())
        res = t["Resources"]
        data = r.resolve(res["LaunchTemplate"]["Properties"]["LaunchTemplateData"])
        ec2, asg = self.client("ec2"), self.client("autoscaling")
        lt = f"{c.name}-workers-{name}"
        ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={
            k: data[k] for k in ("ImageId", "InstanceType", "UserData", "MetadataOptions")})
        for rule, function in (("LaunchRule", "launch-hook"), ("TerminateRule", "terminate-hook")):
            props = r.resolve(res[rule]["Properties"])
            target = props["Targets"][0]["Arn"].rsplit(":function:", 1)[1]
            assert target == self.fn(function), target
            self.control("rules", {"name": f"{lt}-{rule}", "function": target, "pattern": props["EventPattern"],
                                   "target_id": props["Targets"][0]["Id"],
                                   "dead_letter_arn": (props["Targets"][0].get("DeadLetterConfig") or {}).get("Arn")})
            grant = rule.replace("Rule", "InvokePermission")
            self.control("permission", {**permission(r, grant, res[grant]), "statement_id": f"{lt}-{grant}"})
        g = r.resolve(res["Group"]["Properties"])
        group = g["AutoScalingGroupName"]
        self.control("profile", {"group": group, "role": INSTANCE_ROLES["worker"], "key": self.role_keys[INSTANCE_ROLES["worker"]]})
        mixed = g["MixedInstancesPolicy"]
        mixed["LaunchTemplate"]["LaunchTemplateSpecification"] = {"LaunchTemplateName": lt, "Version": "$Latest"}
        # CloudFormation passes the Number parameters on as numbers.
        dist = mixed["InstancesDistribution"]
        for k in ("OnDemandBaseCapacity", "OnDemandPercentageAboveBaseCapacity"):
            dist[k] = int(dist[k])
        asg.create_auto_scaling_group(
            AutoScalingGroupName=group, MinSize=int(g["MinSize"]), MaxSize=int(g["MaxSize"]), DesiredCapacity=0,
            VPCZoneIdentifier=",".join(g["VPCZoneIdentifier"]), MixedInstancesPolicy=mixed,
            CapacityRebalance=bool(g["CapacityRebalance"]),
            Tags=[{**tag, "PropagateAtLaunch": bool(tag["PropagateAtLaunch"]), "ResourceId": group,
                   "ResourceType": "auto-scaling-group"} for tag in g["Tags"]])
        for hook in g["LifecycleHookSpecificationList"]:
            asg.put_lifecycle_hook(AutoScalingGroupName=group, **{**hook, "HeartbeatTimeout": int(hook["HeartbeatTimeout"])})
        asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=int(g["DesiredCapacity"]))
        return group

    def delete_worker_group(self, name: str, timeout: float = 240) -> None:
        """What deleting a worker group's stack does, in reverse dependency order: the group first
        (emptied, min and desired 0, so its instances leave through the terminate hook, then
        deleted: Auto Scaling refuses to delete a group that still has instances), then its
        launch template and rules."""
        c = self.cluster
        assert c is not None
        group = f"{c.name}-workers-{name}"
        asg = self.client("autoscaling")
        asg.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, DesiredCapacity=0)
        wait_for(lambda: not self.state()["groups"].get(group), timeout, f"group {group} to empty")
        asg.delete_auto_scaling_group(AutoScalingGroupName=group)
        self.client("ec2").delete_launch_template(LaunchTemplateName=group)
        for rule, function in (("LaunchRule", "launch-hook"), ("TerminateRule", "terminate-hook")):
            self.control("rules-delete", {"name": f"{group}-{rule}"})
            self.control("permission-delete", {"function": self.fn(function),
                                               "statement_id": f"{group}-{rule.replace('Rule', 'InvokePermission')}"})

    def scale(self, role: str, n: int) -> None:
        assert self.cluster
        g = self.cluster.manager_group if role == "manager" else self.cluster.worker_group
        self.client("autoscaling").set_desired_capacity(AutoScalingGroupName=g, DesiredCapacity=n)

    def terminate(self, instance_id: str, decrement: bool = True) -> None:
        self.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement)

    def spot_interrupt(self, instance_id: str, action: str = "terminate") -> None:
        """The Spot service's warning now, the interruption after the scenario's notice."""
        self.control("spot-interrupt", {"instance": instance_id, "notice": self.timing.spot_notice, "action": action})

    def zone_of(self, instance_id: str) -> str:
        r = self.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        return self.client("ec2").describe_subnets(SubnetIds=[r["SubnetId"]])["Subnets"][0]["AvailabilityZone"]

    def ec2_state(self, instance_id: str) -> str:
        r = self.client("ec2").describe_instances(InstanceIds=[instance_id])
        return r["Reservations"][0]["Instances"][0]["State"]["Name"]

    def instances(self, role: str) -> list[dict[str, Any]]:
        assert self.cluster
        g = self.cluster.manager_group if role == "manager" else self.cluster.worker_group
        return self.state()["groups"].get(g, [])

    def in_service(self, role: str) -> list[str]:
        return [i["id"] for i in self.instances(role) if i["lifecycle"] == "InService"]

    def dns_ips(self) -> list[str]:
        assert self.cluster
        rs = self.client("route53").list_resource_record_sets(HostedZoneId=self.cluster.zone_id)["ResourceRecordSets"]
        want = self.cluster.dns_name.rstrip(".") + "."
        return sorted(r["Value"] for s in rs if s["Name"] == want and s["Type"] == "A" for r in s.get("ResourceRecords", []))

    def docker(self, instance_id: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        sock = self.state()["hosts"][instance_id]["sock"]
        return subprocess.run(["/usr/bin/docker", "-H", f"unix://{sock}", *args], capture_output=True, text=True, timeout=timeout)

    def nodes(self, via: str | None = None) -> list[dict[str, str]]:
        """`docker node ls` on a live manager, with each node's address and instance label."""
        candidates = [via] if via else self.in_service("manager")
        for m in candidates:
            r = self.docker(m, "node", "ls", "-q")
            if r.returncode != 0:
                continue
            ids = r.stdout.split()
            if not ids:
                return []
            fmt = ('{{.ID}}|{{.Description.Hostname}}|{{.Status.State}}|{{.Spec.Availability}}|{{.Spec.Role}}|'
                   '{{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}false{{end}}|'
                   '{{index .Spec.Labels "swarm.instance-id"}}|{{.Status.Addr}}')
            r = self.docker(m, "node", "inspect", *ids, "--format", fmt)
            if r.returncode != 0:
                continue
            keys = ["id", "hostname", "status", "availability", "role", "leader", "instance", "addr"]
            return [dict(zip(keys, line.split("|"), strict=False)) for line in r.stdout.splitlines() if line.strip()]
        raise RuntimeError("no live manager answers docker node ls")

    def actions(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        acts = self.state()["actions"]
        return [a for a in acts if instance_id is None or a["instance_id"] == instance_id]

    def idle(self) -> bool:
        s = self.state()
        return s["lambda_busy"] == 0

    def timeline(self) -> list[dict[str, Any]]:
        p = self.state_dir / "timeline.jsonl"
        return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []

    def function_log(self, name: str = "lifecycle-hook") -> list[dict[str, Any]]:
        p = self.state_dir / "logs" / f"{self.prefix}{name}.log"
        out = []
        if p.exists():
            for line in p.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    out.append({"raw": line})
        return out

    def artefacts(self) -> list[Path]:
        """Every file the run recorded: scanned for secrets by the tests."""
        return [p for p in self.state_dir.rglob("*") if p.is_file() and "hosts" not in p.relative_to(self.state_dir).parts]
