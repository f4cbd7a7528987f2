"""A Lambda runtime API emulator and a small EventBridge bus.

Each function gets execution environments on demand, up to its reserved concurrency:
one process of the real function binary per environment, each talking to its own
runtime API endpoint (/2018-06-01/runtime/invocation/next, …/response, …/error).
EventBridge invokes asynchronously: a function error is retried twice, as Lambda does; an
event that finds every environment busy (the reserved concurrency) is throttled and tried
again later with Lambda's backoff, and dropped once older than MaximumEventAgeInSeconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's default account: the local cloud's one account


@dataclass
class Invocation:
    request_id: str
    function: str
    payload: bytes
    attempt: int = 0
    # When the event entered the asynchronous queue, and how often it was throttled since.
    queued_at: float = field(default_factory=time.time)
    throttles: int = 0
    started: float | None = None
    ended: float | None = None
    result: str | None = None  # "ok", "error", "timeout", "crash"
    body: Any = None
    # A synchronous invocation (an event source mapping's): its caller waits on `done`; Lambda
    # neither retries it nor sends it to the on-failure destination.
    done: threading.Event | None = None


@dataclass
class Environment:
    function: Function
    server: ThreadingHTTPServer
    port: int
    proc: subprocess.Popen | None = None
    pending: queue.Queue[Invocation] = field(default_factory=queue.Queue)
    current: Invocation | None = None
    busy: bool = False
    spawned_at: float = 0.0
    first_next_at: float | None = None
    dead: bool = False
    generation: int = 0  # the function's configuration it was started with


class Function:
    def __init__(self, bus: Lambdas, name: str, binary: str, env: dict[str, str], timeout: float, concurrency: int,
                 memory: int = 256, retries: int = 2, retry_delays: tuple[float, ...] = (1.0, 2.0),
                 log_group: str | None = None, log_level: str = "INFO", log_format: str = "JSON",
                 max_event_age: float = 21600.0, role: str = ""):
        self.bus = bus
        self.name = name
        self.binary = binary
        self.env = env
        self.timeout = timeout
        self.concurrency = concurrency
        self.memory = memory
        self.retries = retries
        self.retry_delays = retry_delays
        self.max_event_age = max_event_age
        self.envs: list[Environment] = []
        self.throttled: set[str] = set()  # request ids of events waiting out a throttle
        self.lock = threading.Lock()
        # Functions may share a log group (LoggingConfig.LogGroup), as the two hook functions do.
        self.log_group = log_group or name
        self.log_level = log_level
        self.log_format = log_format
        self.role = role  # its execution role's ARN
        self.generation = 0  # bumped by each configuration update
        self.log_path = bus.state_dir / "logs" / f"{self.log_group}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def submit(self, inv: Invocation) -> None:
        with self.lock:
            idle = next((e for e in self.envs if not e.busy and not e.dead), None)
            if idle is None and sum(not e.dead for e in self.envs) < self.concurrency:
                idle = self._spawn()
            if idle is None:
                self._throttle(inv)
                return
            idle.busy = True
        idle.pending.put(inv)

    def _throttle(self, inv: Invocation) -> None:
        """No environment is free: "For throttling errors (429) ..., Lambda returns the event
        to the queue and attempts to run the function again for up to 6 hours by default. The
        retry interval increases exponentially from 1 second after the first attempt to a
        maximum of 5 minutes" (Lambda developer guide, asynchronous invocation)."""
        delay = min(2.0 ** inv.throttles, 300.0)
        inv.throttles += 1
        self.throttled.add(inv.request_id)
        self.bus.record("lambda-throttled", function=self.name, request_id=inv.request_id,
                        throttles=inv.throttles, retry_in=delay)
        threading.Timer(delay, self._after_throttle, args=(inv,)).start()

    def _after_throttle(self, inv: Invocation) -> None:
        self.throttled.discard(inv.request_id)
        age = time.time() - inv.queued_at
        if age > self.max_event_age:
            # "MaximumEventAgeInSeconds: The maximum amount of time, in seconds, that Lambda
            # keeps an event in the asynchronous event queue before discarding it" - to the
            # on-failure destination, when there is one.
            self.bus.discard(inv, age, "EventAgeExceeded")
            return
        self.submit(inv)

    def _spawn(self) -> Environment:
        handler = _make_handler(self)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        env = Environment(function=self, server=server, port=server.server_address[1], generation=self.generation)
        server.environment = env  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        penv = dict(os.environ)
        penv.update(self.env)
        penv.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{env.port}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.log_group}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"localcloud/{uuid.uuid4().hex}",
            # LoggingConfig.LogFormat and .ApplicationLogLevel, as Lambda passes them to the runtime.
            "AWS_LAMBDA_LOG_FORMAT": self.log_format,
            "AWS_LAMBDA_LOG_LEVEL": self.log_level,
        })
        logf = open(self.log_path, "a")
        env.spawned_at = time.time()
        env.proc = subprocess.Popen([self.binary], env=penv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.envs.append(env)
        self.bus.record("lambda-init", function=self.name, port=env.port)
        return env

    def finished(self, env: Environment, inv: Invocation, result: str, body: Any) -> None:
        inv.ended = time.time()
        inv.result = result
        inv.body = body
        rss = _peak_rss_kb(env.proc.pid) if env.proc else None
        self.bus.report(inv, rss)
        if inv.done is not None:
            inv.done.set()
        elif result != "ok" and inv.attempt >= self.retries:
            # Every attempt failed: "Lambda sends the event to the on-failure destination".
            self.bus.discard(inv, time.time() - inv.queued_at, "RetriesExhausted")
        if result != "ok" and inv.attempt < self.retries:
            delay = self.retry_delays[min(inv.attempt, len(self.retry_delays) - 1)]
            retry = Invocation(request_id=str(uuid.uuid4()), function=self.name, payload=inv.payload,
                               attempt=inv.attempt + 1, queued_at=inv.queued_at)
            threading.Timer(delay, self.submit, args=(retry,)).start()
        with self.lock:
            env.current = None
            if env.generation != self.generation and not env.dead:
                self._retire(env)  # started with the configuration before the last update
            elif not env.dead:
                env.busy = False

    def reconfigure(self, variables: dict[str, str]) -> None:
        """UpdateFunctionConfiguration's Environment: the function's own variables replaced (the
        runtime's AWS_* ones stay). Events are then processed with the new configuration, in
        environments started with it: idle ones go now, busy ones after their invocation."""
        with self.lock:
            self.env = {**{k: v for k, v in self.env.items() if k.startswith("AWS_")}, **variables}
            self._new_generation()

    def run_as(self, role: str, access_key: str) -> None:
        """UpdateFunctionConfiguration's Role: later events run with that role's credentials."""
        with self.lock:
            self.role = role
            self.env = {**self.env, "AWS_ACCESS_KEY_ID": access_key}
            self._new_generation()

    def _new_generation(self) -> None:
        """Events from now on run in environments started with the new configuration: idle ones
        go now, busy ones after their invocation (the caller holds the lock)."""
        self.generation += 1
        for env in list(self.envs):
            if not env.busy and not env.dead:
                self._retire(env)

    def _retire(self, env: Environment) -> None:
        """An environment shut down between invocations (the caller holds the lock)."""
        env.dead = True
        if env.proc and env.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited between the poll and here
                os.killpg(env.proc.pid, signal.SIGKILL)
        threading.Thread(target=env.server.shutdown, daemon=True).start()
        self.envs.remove(env)

    def watchdog(self) -> None:
        """Kills an environment whose invocation outlived the function timeout, or that died."""
        now = time.time()
        for env in list(self.envs):
            if env.dead:
                continue
            crashed = env.proc is not None and env.proc.poll() is not None
            inv = env.current
            timed_out = inv is not None and inv.started is not None and now - inv.started > self.timeout
            if crashed or timed_out:
                env.dead = True
                if env.proc and env.proc.poll() is None:
                    os.killpg(env.proc.pid, signal.SIGKILL)
                env.server.shutdown()
                if inv is not None:
                    self.finished(env, inv, "timeout" if timed_out else "crash", None)
                with self.lock:
                    self.envs.remove(env)

    def kill_running(self) -> int:
        """Chaos: SIGKILL every environment that is running an invocation now."""
        n = 0
        for env in list(self.envs):
            if env.current is not None and env.proc and env.proc.poll() is None:
                os.killpg(env.proc.pid, signal.SIGKILL)
                n += 1
        return n

    def stop(self) -> None:
        for env in self.envs:
            if env.proc and env.proc.poll() is None:
                try:
                    os.killpg(env.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            env.server.shutdown()
        self.envs.clear()


def _peak_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _make_handler(fn: Function):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:  # quiet
            pass

        def _env(self) -> Environment:
            return self.server.environment  # type: ignore[attr-defined]

        def _reply(self, code: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            env = self._env()
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self._reply(404)
            if env.first_next_at is None:
                env.first_next_at = time.time()
                fn.bus.record("lambda-ready", function=fn.name, init_ms=round((env.first_next_at - env.spawned_at) * 1000, 1))
            inv = env.pending.get()
            inv.started = time.time()
            env.current = inv
            deadline_ms = int((inv.started + fn.timeout) * 1000)
            fn.bus.record("invoke", function=fn.name, request_id=inv.request_id, attempt=inv.attempt)
            self._reply(200, inv.payload, {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{fn.bus.region}:123456789012:function:{fn.name}",
                "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
            })

        def do_POST(self) -> None:
            env = self._env()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = self.path.split("/")
            if self.path == "/2018-06-01/runtime/init/error":
                fn.bus.record("lambda-init-error", function=fn.name, body=body.decode(errors="replace"))
                return self._reply(202)
            if len(parts) >= 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
                inv = env.current
                if inv is None or inv.request_id != parts[4]:
                    return self._reply(400)
                self._reply(202)
                try:
                    parsed = json.loads(body) if body else None
                except json.JSONDecodeError:
                    parsed = body.decode(errors="replace")
                fn.finished(env, inv, "ok" if parts[5] == "response" else "error", parsed)
                return
            self._reply(404)

    return Handler


class Lambdas:
    """Functions, rules, and the async invocation path EventBridge uses."""

    def __init__(self, state_dir: Path, region: str, record: Callable[..., None]):
        self.state_dir = state_dir
        self.region = region
        self.record = record
        self.functions: dict[str, Function] = {}
        # Schedule rules ({"schedule_seconds"}): moto's rules do not fire, so their ticks are
        # the local cloud's. Pattern rules live in moto's EventBridge (put_rule).
        self.schedules: list[dict[str, Any]] = []
        # Each function's resource policy: statement id -> the SourceArn of a rule that
        # events.amazonaws.com may invoke it for (the template's AWS::Lambda::Permission).
        self.permissions: dict[str, dict[str, str]] = {}
        self.invocations: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []  # events dropped from the async queue
        # Called with (function name, its CLUSTER_NAME) for each event sent to the on-failure
        # destination (the cloud's alarms watch it).
        self.on_failure: Callable[[str, str], None] = lambda function, cluster: None
        self.lock = threading.Lock()
        self.report_path = state_dir / "invocations.jsonl"
        self.events_path = state_dir / "events.jsonl"

    def deploy(self, spec: dict[str, Any]) -> None:
        old = self.functions.pop(spec["name"], None)
        if old:
            old.stop()
        self.functions[spec["name"]] = Function(
            self,
            spec["name"],
            spec["binary"],
            {k: str(v) for k, v in spec.get("env", {}).items()},
            float(spec.get("timeout", 300)),
            int(spec.get("concurrency", 10)),
            int(spec.get("memory", 256)),
            int(spec.get("retries", 2)),
            tuple(spec.get("retry_delays", (1.0, 2.0))),
            spec.get("log_group"),
            spec.get("log_level", "INFO"),
            spec.get("log_format", "JSON"),
            float(spec.get("max_event_age", 21600)),
            str(spec.get("role", "")),
        )

    def put_rule(self, rule: dict[str, Any]) -> None:
        """A pattern rule ({"name", "pattern", "function"}, optional "dead_letter_arn") on the
        default bus, created in moto's EventBridge as PutRule and PutTargets would, so the rule's
        API (DescribeRule, ListTargetsByRule, DisableRule, ...) is EventBridge's and delivery
        follows what it holds; or a schedule rule ({"schedule_seconds": N}) that sends
        EventBridge's "Scheduled Event" every N seconds."""
        if "schedule_seconds" in rule:
            self.schedules = [r for r in self.schedules if r["name"] != rule["name"]] + [rule]
            threading.Thread(target=self._schedule, args=(rule,), daemon=True).start()
            return
        bus = self.bus()
        bus.put_rule(rule["name"], description=rule.get("description"), event_pattern=json.dumps(rule["pattern"]))
        target: dict[str, Any] = {"Id": rule.get("target_id", rule["function"]), "Arn": self.function_arn(rule["function"])}
        if rule.get("dead_letter_arn"):
            target["DeadLetterConfig"] = {"Arn": rule["dead_letter_arn"]}
        bus.put_targets(rule["name"], None, [target])

    def delete_rule(self, name: str) -> None:
        """A deleted rule: its targets first, as EventBridge requires (a schedule rule's thread
        ends at its next tick)."""
        self.schedules = [r for r in self.schedules if r["name"] != name]
        bus = self.bus()
        rule = bus.event_buses["default"].rules.get(name)
        if rule:
            rule.remove_targets([t["Id"] for t in rule.targets])
            bus.delete_rule(name, None)

    def bus(self) -> Any:
        """moto's EventBridge of this cloud's account and region."""
        from moto.events.models import events_backends

        return events_backends[ACCOUNT][self.region]

    def role_key(self, role: str) -> str | None:
        """The credentials of a function role by its ARN (None: no function's role)."""
        return next((fn.env.get("AWS_ACCESS_KEY_ID") for fn in list(self.functions.values()) if fn.role == role), None)

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"

    def _schedule(self, rule: dict[str, Any]) -> None:
        period = float(rule["schedule_seconds"])
        while any(r is rule for r in self.schedules):
            time.sleep(period)
            if not any(r is rule for r in self.schedules):
                return
            event = scheduled_event(self.region, rule["name"])
            self.record("event", detail_type=event["detail-type"], targets=[rule["function"]], instance=None)
            fn = self.functions.get(rule["function"])
            if fn:
                fn.submit(Invocation(request_id=str(uuid.uuid4()), function=rule["function"], payload=json.dumps(event).encode()))

    def add_permission(self, function: str, statement_id: str, source_arn: str) -> None:
        """AddPermission: events.amazonaws.com may invoke `function` for the rule `source_arn`."""
        self.permissions.setdefault(function, {})[statement_id] = source_arn

    def remove_permission(self, function: str, statement_id: str) -> None:
        self.permissions.get(function, {}).pop(statement_id, None)

    def matching_targets(self, event: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
        """(rule, target) of every enabled rule of the default bus whose pattern matches `event`
        (moto's EventBridge pattern matching): where EventBridge sends it."""
        rules = list(self.bus().event_buses["default"].rules.values())
        return [(r, t) for r in rules
                if r.state == "ENABLED" and r.event_pattern.get_pattern() and r.event_pattern.matches_event(event)
                for t in r.targets if ":function:" in t["Arn"]]

    def put_event(self, event: dict[str, Any]) -> list[str]:
        """Delivers an event to every matching rule's function; returns their names. A target
        that cannot be invoked is not retried: "for errors that result from missing permissions
        to a target, or if a target resource that no longer exists, no retry attempts will
        happen ... EventBridge sends these events directly to the target DLQ" (EventBridge
        User Guide, dead-letter queues)."""
        with open(self.events_path, "a") as f:
            f.write(json.dumps(event) + "\n")
        targets = []
        for rule, target in self.matching_targets(event):
            name = target["Arn"].rsplit(":function:", 1)[1]
            if name not in self.functions:
                self.undeliverable(event, rule, target, "NO_RESOURCE", f"Function not found: {target['Arn']}")
            elif rule.arn not in self.permissions.get(name, {}).values():
                self.undeliverable(event, rule, target, "NO_PERMISSIONS",
                                   f"EventBridge is not authorized to invoke {target['Arn']} for {rule.arn}")
            else:
                targets.append(name)
        self.record("event", detail_type=event.get("detail-type"), targets=targets,
                    instance=(event.get("detail") or {}).get("EC2InstanceId") if isinstance(event.get("detail"), dict) else None)
        for t in targets:
            self.functions[t].submit(Invocation(request_id=str(uuid.uuid4()), function=t, payload=json.dumps(event).encode()))
        return targets

    def undeliverable(self, event: dict[str, Any], rule: Any, target: dict[str, Any], code: str, message: str) -> None:
        """The event to the target's dead-letter queue, with the attributes AWS documents
        (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE); dropped without one."""
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn", "")
        self.record("event-undelivered", rule=rule.name, function=target["Arn"].rsplit(":function:", 1)[1],
                    error_code=code, dead_letter_queue=dlq.rsplit(":", 1)[-1] or None)
        if not dlq:
            return
        from moto.sqs.models import sqs_backends

        attributes = {"RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"], "ERROR_CODE": code, "ERROR_MESSAGE": message}
        sqs_backends[ACCOUNT][self.region].send_message(
            dlq.rsplit(":", 1)[-1], json.dumps(event),
            message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})

    def invoke_raw(self, function: str, payload: bytes) -> str:
        fn = self.functions[function]
        inv = Invocation(request_id=str(uuid.uuid4()), function=function, payload=payload)
        fn.submit(inv)
        return inv.request_id

    def invoke_sync(self, function: str, payload: bytes) -> tuple[str, Any]:
        """Invokes and waits (RequestResponse): (result, response body)."""
        fn = self.functions[function]
        inv = Invocation(request_id=str(uuid.uuid4()), function=function, payload=payload, done=threading.Event())
        fn.submit(inv)
        inv.done.wait()
        return inv.result or "error", inv.body

    def report(self, inv: Invocation, rss_kb: int | None) -> None:
        rec = {
            "function": inv.function,
            "request_id": inv.request_id,
            "attempt": inv.attempt,
            "result": inv.result,
            "started": inv.started,
            "duration_ms": round(((inv.ended or 0) - (inv.started or 0)) * 1000, 1) if inv.started else None,
            "max_rss_kb": rss_kb,
            "response": inv.body,
        }
        with self.lock:
            self.invocations.append(rec)
            with open(self.report_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.record("invoke-end", function=inv.function, request_id=inv.request_id, result=inv.result,
                    duration_ms=rec["duration_ms"], response=inv.body)

    def discard(self, inv: Invocation, age: float, condition: str) -> None:
        """An event Lambda gave up on, as its on-failure destination receives it."""
        rec = {"function": inv.function, "request_id": inv.request_id, "condition": condition,
               "age": round(age, 1), "payload": json.loads(inv.payload)}
        with self.lock:
            self.discarded.append(rec)
        self.record("lambda-event-discarded", function=inv.function, request_id=inv.request_id,
                    condition=condition, age=rec["age"])
        fn = self.functions.get(inv.function)
        cluster = fn.env.get("CLUSTER_NAME", "") if fn else ""
        self.to_failure_queue(inv, condition, cluster)
        self.on_failure(inv.function, cluster)

    def to_failure_queue(self, inv: Invocation, condition: str, cluster: str) -> None:
        """The invocation record Lambda sends its on-failure destination, the template's
        FailedInvocations queue (when the cluster has one): version, timestamp, requestContext
        (requestId, functionArn, condition, approximateInvokeCount), requestPayload ("Lambda
        sends an invocation record to the destination", Lambda developer guide, destinations)."""
        from moto.sqs.models import sqs_backends

        queue = f"swarm-{cluster}-failed-invocations"
        backend = sqs_backends[ACCOUNT][self.region]
        if queue not in backend.queues:
            return
        record = {"version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                  "requestContext": {"requestId": inv.request_id, "functionArn": self.function_arn(inv.function) + ":$LATEST",
                                     "condition": condition, "approximateInvokeCount": inv.attempt + (1 if inv.started else 0)},
                  "requestPayload": json.loads(inv.payload)}
        if inv.started and inv.result in ("error", "timeout", "crash"):
            # "The invocation record contains details about the request and response": the last
            # attempt's error. An error the function reported is Handled, one Lambda detected
            # (a timeout, the process gone) Unhandled (InvocationResponse's FunctionError).
            record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Handled" if inv.result == "error" else "Unhandled"}
            record["responsePayload"] = self._error_payload(inv)
        backend.send_message(queue, json.dumps(record))

    def _error_payload(self, inv: Invocation) -> dict[str, Any]:
        if inv.result == "error" and isinstance(inv.body, dict):
            return {k: inv.body[k] for k in ("errorType", "errorMessage") if k in inv.body}
        if inv.result == "timeout":
            fn = self.functions.get(inv.function)
            limit = fn.timeout if fn else 0.0
            return {"errorMessage": f"{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())} {inv.request_id} "
                                    f"Task timed out after {limit:.2f} seconds"}
        return {"errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited without providing a reason"}

    def busy(self) -> int:
        return sum(1 for f in self.functions.values() for e in f.envs if e.busy) + sum(len(f.throttled) for f in self.functions.values())

    def tick(self) -> None:
        for f in list(self.functions.values()):
            f.watchdog()

    def stop(self) -> None:
        for f in self.functions.values():
            f.stop()


def scheduled_event(region: str, rule: str) -> dict[str, Any]:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"], "detail": {},
    }
