"""Issue #19: two deployments in one account and one VPC, sharing a private zone and the
parameter prefix, each acting only on its own cluster."""

from __future__ import annotations

import pytest

from conftest import bin_dir, settle
from localcloud.client import wait_for


def own_view(lc) -> tuple[set[str], set[str]]:
    """The instances in service in a deployment's groups, and the node labels of its swarm."""
    in_service = set(lc.in_service("manager")) | set(lc.in_service("worker"))
    labels = {n["instance"] for n in lc.nodes() if n["status"] == "ready"}
    return in_service, labels


def test_two_clusters_in_one_account_stay_apart(cloud):
    blue = cloud  # the fixture's deployment ("demo")
    green = cloud.add_cluster("green", bin_dir())
    # Both clusters launch at the same time.
    for lc in (blue, green):
        lc.scale("manager", 2)
        lc.scale("worker", 1)
    for lc in (blue, green):
        wait_for(lambda lc=lc: len(lc.in_service("manager")) == 2 and len(lc.in_service("worker")) == 1, 240,
                 f"{lc.cluster.name}: 2 managers and a worker in service")
    settle(cloud, 180)
    # A worker and a manager of each terminated at the same time.
    for lc in (blue, green):
        lc.terminate(lc.in_service("worker")[0])
        lc.terminate(lc.in_service("manager")[0])
    for lc in (blue, green):
        wait_for(lambda lc=lc: len(lc.in_service("manager")) == 1 and not lc.instances("worker"), 180,
                 f"{lc.cluster.name}: one manager left")
    settle(cloud, 180)
    # A reconcile of each, and of the other cluster by name: left alone.
    for lc, other in ((blue, green), (green, blue)):
        assert [r["cluster"] for r in lc.reconcile()["clusters"]] == [lc.cluster.name]
        assert lc.reconcile({"cluster": other.cluster.name})["clusters"] == []
    for lc in (blue, green):
        in_service, labels = own_view(lc)
        assert labels == in_service, f"{lc.cluster.name}: swarm {labels} vs groups {in_service}"
        ips = sorted(i["ip"] for i in lc.instances("manager") if i["lifecycle"] == "InService")
        assert lc.dns_ips() == ips, f"{lc.cluster.name}: record {lc.dns_ips()} vs managers {ips}"
    # No call by one deployment's principals touched the other's resources (the request log).
    names = {lc.cluster.name: lc for lc in (blue, green)}
    instances = {name: {e["instance"] for e in cloud.timeline() if e["kind"] == "instance-launched"
                        and e["group"].startswith(f"{name}-")} for name in names}
    crossing = []
    for call in cloud.control("api-calls"):
        mine = call.get("cluster")
        if not mine:
            continue
        for other in (n for n in names if n != mine):
            marks = [f"{other}-managers", f"{other}-workers", f"/{other}/", f"swarm-{other}-",
                     *(f"instance/{i}" for i in instances[other])]
            crossing += [(call["principal"], mine, call["op"], r) for r in call["resources"]
                         if any(m in r for m in marks)]
    assert not crossing, crossing
    # Both deployments' functions handled their own events (the other's are not even delivered).
    for lc in (blue, green):
        assert any(line.get("step") == "complete" for line in lc.function_log()), lc.cluster.name


@pytest.mark.expect_denials
def test_a_deployment_cannot_change_another_clusters_record(cloud):
    """The roles' condition on the record name: with a shared zone, the blue lifecycle role
    cannot write the green record (checked with blue's own credentials)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from localcloud.client import REGION

    green = cloud.add_cluster("green", bin_dir())
    r53 = boto3.client("route53", endpoint_url=cloud.endpoint, region_name=REGION,
                       aws_access_key_id=cloud.role_keys["LifecycleRole"], aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 1}))
    change = lambda name: r53.change_resource_record_sets(  # noqa: E731
        HostedZoneId=cloud.cluster.zone_id.split("/")[-1],
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": "A", "SetIdentifier": "probe", "MultiValueAnswer": True, "TTL": 5,
            "ResourceRecords": [{"Value": "10.9.9.9"}]}}]})
    change(cloud.cluster.dns_name)  # its own record: allowed
    try:
        change(green.cluster.dns_name)
        raise AssertionError("the blue role changed the green record")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", e.response
    denials = cloud.denials()
    assert [d["action"] for d in denials] == ["route53:ChangeResourceRecordSets"], denials


@pytest.mark.expect_denials
def test_a_deployment_cannot_act_on_the_groups_of_a_cluster_named_after_its_own(cloud):
    """A cluster named "<this one>-workers": its manager group, "<this one>-workers-managers",
    begins like this cluster's worker group. Every role of this deployment that completes
    lifecycle actions reaches exactly its own groups (a grant ending in "-workers*" reached it)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from localcloud.client import REGION

    other = cloud.add_cluster(f"{cloud.cluster.name}-workers", bin_dir())
    assert other.cluster.manager_group.startswith(cloud.cluster.worker_group)

    def complete(role: str, group: str) -> str:
        asg = boto3.client("autoscaling", endpoint_url=cloud.endpoint, region_name=REGION,
                           aws_access_key_id=cloud.role_keys[role], aws_secret_access_key="x",
                           config=Config(retries={"max_attempts": 1}))
        try:
            asg.complete_lifecycle_action(AutoScalingGroupName=group, LifecycleHookName="launch",
                                          InstanceId="i-0123456789abcdef0", LifecycleActionResult="CONTINUE")
        except ClientError as e:
            return e.response["Error"]["Code"]
        return "ok"

    roles = ("LifecycleRole", "ReconcileRole", "OperatorRole")
    # Its own worker group: IAM lets it through (Auto Scaling then finds no such action).
    assert [complete(r, cloud.cluster.worker_group) for r in roles] == ["ValidationError"] * 3
    assert [complete(r, other.cluster.manager_group) for r in roles] == ["AccessDenied"] * 3
    denials = cloud.denials()
    assert [d["action"] for d in denials] == ["autoscaling:CompleteLifecycleAction"] * 3, denials
