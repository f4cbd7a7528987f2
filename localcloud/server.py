"""Runs the local cloud: moto + the fidelity layer on loopback and on the instances' bridge."""

from __future__ import annotations

import datetime
import faulthandler
import io
import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import iam, imds, services
from .cloud import LOCK, REBALANCE, Cloud
from .event_sources import MappingError, SqsSource


def control(cloud: Cloud, request: Request) -> Response:
    """/_localcloud/*: what a test or the demo needs beyond the AWS APIs."""
    path = request.path.removeprefix("/_localcloud/")
    body: Any = request.get_json(silent=True) if request.method == "POST" else None
    out: Any = {}
    if path == "state":
        out = cloud.snapshot()
    elif path == "deploy":
        cloud.lambdas.deploy(body)
    elif path == "rules":
        cloud.lambdas.put_rule(body)
    elif path == "event-source":  # {"function", "queue", "batch_size"}: an SQS event source mapping
        try:
            src = SqsSource(cloud, body["function"], body["queue"], int(body.get("batch_size", 1)))
        except MappingError as e:
            return Response(json.dumps({"__type": "InvalidParameterValueException", "message": str(e)}),
                            status=400, content_type="application/json")
        for old in [s for s in cloud.sources if s.function == src.function]:
            old.stopped.set()  # a redeploy replaces the mapping
            cloud.sources.remove(old)
        src.start()
        cloud.sources.append(src)
    elif path == "rules-delete":  # {"name"}: a deleted stack's rule
        cloud.lambdas.delete_rule(body["name"])
    elif path == "permission":  # {"function", "statement_id", "source_arn"}: AddPermission for a rule
        cloud.lambdas.add_permission(body["function"], body["statement_id"], body["source_arn"])
    elif path == "permission-delete":  # {"function", "statement_id"}: RemovePermission
        cloud.lambdas.remove_permission(body["function"], body["statement_id"])
    elif path == "stack":  # {"StackName", "Parameters", "Outputs", "Resources"}: CloudFormation's view of it
        name = body["StackName"]
        old = cloud.stacks.get(name) or {}
        cloud.stacks[name] = {
            **body, "StackStatus": "CREATE_COMPLETE",
            "StackId": old.get("StackId") or f"arn:aws:cloudformation:{cloud.region}:123456789012:stack/{name}/{uuid.uuid4()}",
            "CreationTime": old.get("CreationTime") or datetime.datetime.now(datetime.UTC)}
    elif path == "shared-storage":  # {"cluster"}: its EFS file system (SharedStorage=efs), one directory
        d = cloud.state_dir / "shared-storage" / body["cluster"]
        d.mkdir(parents=True, exist_ok=True)
        with LOCK:
            cloud.shared_storage[body["cluster"]] = d
        out = {"path": str(d)}
    elif path == "profile":  # {"group", "role", "key"}: the instance profile a group's launch template names
        with LOCK:
            cloud.profiles[body["group"]] = (body["role"], body["key"])
    elif path == "events":
        out = {"targets": cloud.lambdas.put_event(body)}
    elif path == "invoke":
        out = {"request_id": cloud.lambdas.invoke_raw(body["function"], json.dumps(body["payload"]).encode())}
    elif path == "invocations":
        out = cloud.lambdas.invocations
    elif path == "published":  # the custom events EventBridge took, in order
        out = cloud.published
    elif path == "api-calls":
        out = cloud.api_calls
    elif path == "iam":  # the template's principals, rendered with the scenario's parameters
        out = {"keys": cloud.load_iam(body)}
    elif path == "iam-report":
        out = cloud.iam.report()
    elif path == "faults":
        with LOCK:
            for k, v in (body or {}).items():
                if k == "offline":  # {"i-…": seconds}: the agent stays offline that long from now
                    for iid, secs in v.items():
                        cloud.offline_until[iid] = time.time() + float(secs)
                else:
                    cloud.faults[k] = int(v)
        cloud.record("faults-set", faults=body)
        out = {"faults": cloud.faults}
    elif path == "release-events":
        out = {"order": cloud.release_events(int(body.get("seed", 0)), int(body.get("copies", 1)),
                                            float(body.get("spacing", 0)))}
    elif path == "kill":
        out = {"killed": cloud.hosts.kill_hard(body["instance"])}
        cloud.record("host-killed", instance=body["instance"])
    elif path == "partition":  # {"instance", "cut": true|false}: its links to the other hosts
        out = {"peers": cloud.hosts.partition(body["instance"], bool(body.get("cut", True)))}
        cloud.record("partition-cut" if body.get("cut", True) else "partition-healed", instance=body["instance"],
                     peers=out["peers"])
    elif path == "scheduled-change":  # {"instance", "code": instance-retirement|…, "in": seconds}
        out = cloud.schedule_change(body["instance"], body.get("code", "instance-retirement"), float(body.get("in", 60)))
    elif path == "run-lock":  # each host's /run/lock: the fence a retirement leaves and the join lock
        out = {iid: cloud.hosts.run_lock(h) for iid, h in list(cloud.hosts.hosts.items())}
    elif path == "scheduled-change-closed":  # {"instance", "started_ago": seconds}: the change is over
        cloud.close_change(body["instance"], float(body.get("started_ago", 60)))
    elif path == "zone-lost":  # {"zone": "us-east-1b"}: every host in it dies at once
        out = {"instances": cloud.lose_zone(body["zone"])}
    elif path == "spot-interrupt":  # {"instance", "notice": seconds, "action": terminate|stop}
        cloud.spot_interrupt(body["instance"], float(body.get("notice", 120)), body.get("action", "terminate"))
    elif path == "rebalance":  # {"instance"}: EC2's rebalance recommendation
        cloud.ec2_event(body["instance"], REBALANCE, {})
    elif path == "kill-invocations":
        fn = cloud.lambdas.functions.get(body["function"])
        out = {"killed": fn.kill_running() if fn else 0}
        cloud.record("invocations-killed", function=body["function"], count=out["killed"])
    else:
        return Response(json.dumps({"error": f"unknown control path {path}"}), status=404, mimetype="application/json")
    return Response(json.dumps(out, default=str), mimetype="application/json")


def build_app(cloud: Cloud):
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_localcloud/"):
            return control(cloud, Request(environ))(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        req = iam.parse_request(environ, body)
        checks = cloud.iam.checks(req, cloud)
        caller = cloud.count_call(environ, req, checks)
        denial = cloud.iam.authorize(req, checks, caller)
        if denial is not None:
            cloud.record("denied", caller=caller, principal=denial["principal"], action=denial["action"],
                         resource=denial["resource"])
            status, ctype, payload = iam.denial_response(req, denial)
            start_response(f"{status} {'Bad Request' if status == 400 else 'Forbidden'}",
                           [("Content-Type", ctype), ("Content-Length", str(len(payload))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
            return [payload]
        with LOCK:
            # Materialise the response under the lock: moto is not thread-safe.
            return list(moto_app(environ, start_response))

    return app


def serve(state_dir: Path, cfg: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    cloud = Cloud(state_dir, cfg)
    services.install(cloud)
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    # A cloud that does not stop after SIGTERM gets SIGUSR1 before SIGKILL (client.stop): every
    # thread's stack goes to cloud.log, so a hung teardown can be read afterwards.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGINT, on_signal)
    servers = []
    try:
        cloud.hosts.setup_network()
        app = build_app(cloud)
        local = make_server("127.0.0.1", int(cfg.get("port", 0)), app, threaded=True)
        cloud.port = local.server_port
        servers.append(local)
        # The instances reach the AWS endpoints through their gateway, as on a VPC.
        servers.append(make_server(cloud.gateway, cloud.port, app, threaded=True))
        for s in servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(imds.serve(cloud.metadata_for, cloud.record))
        (state_dir / "endpoint").write_text(f"http://127.0.0.1:{cloud.port}\n")
        cloud.record("cloud-up", port=cloud.port)
        while not stop.is_set():
            cloud.tick()
            stop.wait(0.05)
    finally:
        cloud.record("cloud-down")
        # What each principal was granted, used and denied: `make iam-report` reads these.
        (state_dir / "iam-report.json").write_text(json.dumps(cloud.iam.report(), indent=1, default=str))
        for s in servers:
            s.shutdown()
        cloud.lambdas.stop()
        cloud.hosts.destroy_all()
        (state_dir / "endpoint").unlink(missing_ok=True)
