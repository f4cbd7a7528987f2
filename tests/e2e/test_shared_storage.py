"""#31.3: shared storage (SharedStorage=efs): every node mounts the cluster's file system at
/cluster at boot (the local cloud: one directory, bind-mounted at /cluster in every host of the
cluster); a node whose mount failed is not joined and its launch is abandoned with the reason."""

from __future__ import annotations

import pytest

from conftest import scale_out, settle
from localcloud.client import wait_for


def one_shot(lc, via: str, name: str, hostname: str, script: str) -> str:
    """A one-task service on `hostname` running `script` with /cluster at /data; its task's
    final state (Complete: exit 0, Failed: not)."""
    r = lc.docker(via, "service", "create", "--detach", "--name", name, "--restart-condition", "none",
                  "--constraint", f"node.hostname=={hostname}", "--mount", "type=bind,src=/cluster,dst=/data",
                  "busybox:local", "sh", "-c", script)
    assert r.returncode == 0, r.stderr

    def final() -> str | None:
        out = lc.docker(via, "service", "ps", name, "--format", "{{.CurrentState}}").stdout.split()
        return out[0] if out and out[0] in ("Complete", "Failed", "Rejected") else None

    state = wait_for(final, 60, f"task {name} to finish")
    assert lc.docker(via, "service", "rm", name).returncode == 0
    return state


@pytest.mark.cluster_params(SharedStorage="efs")
def test_a_file_written_on_one_node_is_read_on_another_after_the_first_retired_and_an_unmounted_launch_is_abandoned(cloud):
    scale_out(cloud, 1, 2)
    m = cloud.in_service("manager")[0]
    first, second = cloud.in_service("worker")
    hostname = {n["instance"]: n["hostname"] for n in cloud.nodes(m)}
    assert one_shot(cloud, m, "writer", hostname[first], f"echo written-on-{first} > /data/note") == "Complete"

    # The writer's node leaves through its hook; the file stays with the cluster.
    cloud.terminate(first)
    wait_for(lambda: first not in [i["id"] for i in cloud.instances("worker")], 120, "the first worker terminated")
    settle(cloud)
    assert first not in [n["instance"] for n in cloud.nodes(m)]
    assert one_shot(cloud, m, "reader", hostname[second], f"grep -qx written-on-{first} /data/note") == "Complete"
    # Not vacuous: a file that is not there fails the task.
    assert one_shot(cloud, m, "missing", hostname[second], "cat /data/absent") == "Failed"

    # A launch whose boot could not mount the file system: abandoned at once, with the reason.
    cloud.control("faults", {"shared_storage_unmounted": 1})
    cloud.scale("worker", 2)
    new = wait_for(lambda: [i["id"] for i in cloud.instances("worker") if i["id"] != second], 30, "a new worker")[0]
    wait_for(lambda: any(a["instance_id"] == new and a["result"] == "ABANDON" for a in cloud.actions()), 120,
             "the launch abandoned")
    abandons = wait_for(lambda: [line for line in cloud.function_log() if line.get("outcome") == "abandoned"], 30,
                        "the abandon logged")
    assert "shared storage /cluster is not mounted" in abandons[0].get("reason", ""), abandons
    assert new not in [n["instance"] for n in cloud.nodes(m)]
    # Its replacement boots with the mount and joins.
    wait_for(lambda: len(cloud.in_service("worker")) == 2, 180, "a replacement in service")
    settle(cloud)
    third = next(i for i in cloud.in_service("worker") if i not in (second, new))
    hostname = {n["instance"]: n["hostname"] for n in cloud.nodes(m)}
    assert one_shot(cloud, m, "late-reader", hostname[third], f"grep -qx written-on-{first} /data/note") == "Complete"
