"""Join tokens never appear in command parameters, command output, command lines on the
instances, function logs or anything the suite records."""

from __future__ import annotations

import re

from conftest import scale_out

TOKEN = re.compile(rb"SWMTKN-1-[0-9a-z]{20,}")


def test_no_join_token_in_any_artefact(cloud):
    scale_out(cloud, 2, 1)
    w = cloud.in_service("worker")[0]
    cloud.terminate(w)
    m = cloud.in_service("manager")[0]
    real = cloud.docker(m, "swarm", "join-token", "-q", "worker").stdout.strip()
    assert real.startswith("SWMTKN-"), "the swarm has a token to look for"
    from localcloud.client import wait_for

    wait_for(lambda: w not in [i["id"] for i in cloud.instances("worker")], 60, "worker gone")
    files = cloud.artefacts()
    assert any(f.name == "ssm-commands.jsonl" for f in files)
    assert any(f.name == "lifecycle-hook.log" for f in files)
    # Every command line the instances ran (what `ps` shows any local user), joins included.
    argv = next(f for f in files if f.name == "argv.log").read_text()
    assert "/swarm/join" in argv and "docker " in argv, argv[-2000:]
    hits = [str(f) for f in files if TOKEN.search(f.read_bytes()) or real.encode() in f.read_bytes()]
    assert hits == [], f"join token found in {hits}"
