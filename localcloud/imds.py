"""The instance metadata service, as EC2 serves it at 169.254.169.254 to each instance.

IMDSv2 only (the launch templates set HttpTokens: required): a PUT /latest/api/token first,
then GETs carrying the token; a GET without one is answered 401. The instance is known by
the address its request comes from, and its credentials are its instance profile's role
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ADDRESS = "169.254.169.254"


def serve(lookup: Callable[[str], dict[str, Any] | None], record: Callable[..., None]) -> ThreadingHTTPServer:
    """lookup(source ip) -> {"instance_id", "region", "role", "access_key", "ip"} or None."""
    tokens: dict[str, tuple[str, float]] = {}  # token -> (source ip, expiry)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.path != "/latest/api/token" or not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self._reply(400)
            token = secrets.token_urlsafe(32)
            with lock:
                tokens[token] = (self.client_address[0], time.time() + int(ttl))
            self._reply(200, token)

        def do_GET(self) -> None:
            src = self.client_address[0]
            token = self.headers.get("X-aws-ec2-metadata-token", "")
            with lock:
                owner = tokens.get(token)
            if owner is None or owner[0] != src or owner[1] < time.time():
                return self._reply(401)
            me = lookup(src)
            if me is None:
                return self._reply(404)
            path = self.path.split("?")[0].rstrip("/")
            creds_dir = "/latest/meta-data/iam/security-credentials"
            if path == creds_dir:
                return self._reply(200, me["role"]) if me.get("role") else self._reply(404)
            if path == f"{creds_dir}/{me.get('role')}":
                record("imds-credentials", instance=me["instance_id"], role=me["role"])
                exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
                return self._reply(200, json.dumps({
                    "Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "Type": "AWS-HMAC", "AccessKeyId": me["access_key"], "SecretAccessKey": "instance-profile",
                    "Token": "instance-profile-session", "Expiration": exp}), "application/json")
            values = {
                "/latest/meta-data/instance-id": me["instance_id"],
                "/latest/meta-data/placement/region": me["region"],
                "/latest/meta-data/placement/availability-zone": me["region"] + "a",
                "/latest/meta-data/local-ipv4": me["ip"],
                "/latest/dynamic/instance-identity/document": json.dumps({
                    "instanceId": me["instance_id"], "region": me["region"], "availabilityZone": me["region"] + "a",
                    "privateIp": me["ip"], "accountId": "123456789012"}),
            }
            if path in values:
                return self._reply(200, values[path])
            self._reply(404)

    server = ThreadingHTTPServer((ADDRESS, 80), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
