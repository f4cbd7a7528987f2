"""`make deploy-code` (scripts/deploy-code.sh, cargo lambda deploy) against moto's Lambda: new
code reaches the cluster's functions, and nothing of their configuration changes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_endpoint():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.time() < end, "moto_server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_deploy_code_changes_the_code_and_nothing_else(moto_endpoint, tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    kw = dict(endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    iam, lam = boto3.client("iam", **kw), boto3.client("lambda", **kw)
    role = iam.create_role(RoleName="LifecycleRole", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    old = tmp_path / "old.zip"
    subprocess.run(["python3", "-c", "import zipfile,sys; zipfile.ZipFile(sys.argv[1],'w').writestr('bootstrap','old')", str(old)],
                   check=True)
    # Two of the cluster's functions exist (as a stack without ECS or notices would have fewer).
    for name in ("swarm-blue-launch-hook", "swarm-blue-reconcile"):
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=role,
                            Code={"ZipFile": old.read_bytes()}, Timeout=900, MemorySize=256,
                            Environment={"Variables": {"CLUSTER_NAME": "blue", "HOSTED_ZONE_ID": "Z1"}},
                            TracingConfig={"Mode": "Active"})
    before = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    bins = tmp_path / "lambda"
    for b in ("lifecycle-hook", "ecs-state-change", "instance-notice", "scheduled-change", "reconcile"):
        (bins / b).mkdir(parents=True)
        # cargo lambda checks it is given a Linux binary: a small real one, told apart by a tail.
        (bins / b / "bootstrap").write_bytes(Path("/bin/true").read_bytes() + b.encode())
    r = subprocess.run([str(ROOT / "scripts" / "deploy-code.sh")], env={**env, "CLUSTER": "blue", "BIN_DIR": str(bins)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "swarm-blue-ecs-state-change: no such function" in r.stdout, r.stdout
    after = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert sorted(after) == sorted(before), "a function was created"
    keep = ("Role", "Environment", "Timeout", "MemorySize", "TracingConfig", "Runtime", "Handler")
    for name in before:
        assert after[name]["CodeSha256"] != before[name]["CodeSha256"], name
        assert {k: after[name].get(k) for k in keep} == {k: before[name].get(k) for k in keep}, name
    # A cluster with no function: refused, and nothing created.
    r = subprocess.run([str(ROOT / "scripts" / "deploy-code.sh")], env={**env, "CLUSTER": "green", "BIN_DIR": str(bins)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "no function of cluster green" in r.stderr, r.stdout + r.stderr
    assert len(lam.list_functions()["Functions"]) == 2
