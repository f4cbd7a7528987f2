"""Service names in Route 53 (ServiceRecordSuffix): a service labelled swarm-lifecycle.dns-name
gets a multivalue A record of its nodes and an owner TXT record; a leaving node leaves every
name before it drains and is held TTL + extra after that change; records the project did not
create are left alone; the roles may change no name outside the suffix."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import scale_out, settle
from localcloud.client import REGION, wait_for

SUFFIX = "apps.demo.swarm.internal"


def names(cloud) -> dict[str, dict[str, list[str]]]:
    """Each name under the suffix: {"A": its values, "TXT": its owner values}."""
    r53 = cloud.client("route53")
    zone = cloud.cluster.zone_id.split("/")[-1]
    out: dict[str, dict[str, list[str]]] = {}
    for rs in r53.list_resource_record_sets(HostedZoneId=zone, MaxItems="300")["ResourceRecordSets"]:
        name = rs["Name"].rstrip(".")
        if name.endswith("." + SUFFIX):
            out.setdefault(name, {}).setdefault(rs["Type"], []).extend(r["Value"] for r in rs["ResourceRecords"])
    return out


def service(cloud, name: str, *args: str) -> None:
    m = cloud.in_service("manager")[0]
    r = cloud.docker(m, "service", "create", "--detach", "--name", name, *args, "busybox:local", "sleep", "1000000")
    assert r.returncode == 0, r.stderr


@pytest.mark.cluster_params(ServiceRecordSuffix=SUFFIX)
def test_service_names_follow_their_nodes_dns_first_and_leave_other_records_alone(cloud):
    scale_out(cloud, 1, 2)
    hosts = cloud.state()["hosts"]
    workers = cloud.in_service("worker")
    ip = {i: hosts[i]["ip"] for i in hosts}
    zone = cloud.cluster.zone_id.split("/")[-1]
    # A record made by hand, with the name a service will ask for.
    cloud.client("route53").change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {"Name": f"shop.{SUFFIX}", "Type": "A", "TTL": 300,
                                                  "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})
    service(cloud, "web", "--label", f"swarm-lifecycle.dns-name=web.{SUFFIX}", "--publish", "8080:80")
    service(cloud, "db", "--label", f"swarm-lifecycle.dns-name=db.{SUFFIX}",
            "--publish", "mode=host,target=5432,published=5432", "--constraint", "node.role==worker")
    service(cloud, "shop", "--label", f"swarm-lifecycle.dns-name=shop.{SUFFIX}", "--publish", "8081:80")
    service(cloud, "outside", "--label", "swarm-lifecycle.dns-name=outside.example.com", "--publish", "8082:80")
    wait_for(lambda: cloud.docker(cloud.in_service("manager")[0], "service", "ps", "db", "--filter",
                                  "desired-state=running", "--format", "{{.CurrentState}}").stdout.startswith("Running"),
             60, "db running")
    cloud.reconcile()
    got = names(cloud)
    assert sorted(got[f"web.{SUFFIX}"]["A"]) == sorted(ip[w] for w in workers), got
    assert got[f"web.{SUFFIX}"]["TXT"] == ['"heritage=swarm-lifecycle,swarm-lifecycle/cluster=demo,swarm-lifecycle/service=web"']
    db_node = next(w for w in workers if ip[w] in got[f"db.{SUFFIX}"]["A"])
    assert got[f"db.{SUFFIX}"]["A"] == [ip[db_node]], got
    assert got[f"shop.{SUFFIX}"] == {"A": ["192.0.2.1"]}, "a hand-made record is left alone"
    refused = {(line.get("service"), line.get("reason")) for line in cloud.function_log("reconcile")
               if line.get("step") == "service-name" and line.get("outcome") == "refused"}
    assert ("shop", "records this project did not create are there: left alone") in refused, refused
    assert any(s == "outside" and "outside the names" in r for s, r in refused), refused
    # A converged reconcile writes nothing.
    before = len([e for e in cloud.timeline() if e["kind"] == "dns-change"])
    cloud.reconcile()
    assert len([e for e in cloud.timeline() if e["kind"] == "dns-change"]) == before, "nothing written"

    # The worker running db leaves: out of every name first, held TTL + extra after that change.
    cloud.terminate(db_node)
    wait_for(lambda: db_node not in [i["id"] for i in cloud.instances("worker")], 120, "worker terminated")
    settle(cloud)
    tl = cloud.timeline()
    delete = next(e for e in tl if e["kind"] == "dns-change"
                  and any(c["action"] == "DELETE" and c["set"] == db_node for c in e["changes"]))
    first_drain = next(e for e in tl if e["kind"] == "command" and e["comment"] in ("drain", "drain and retire node")
                       and e["t"] > delete["t"] - 60)
    assert delete["t"] < first_drain["t"], "the names changed before the drain"
    released = next(e for e in tl if e["kind"] == "action-ended" and e["instance"] == db_node and e["transition"] == "terminate")
    assert released["t"] >= delete["insync_at"] + cloud.timing.hold, (released, delete)
    assert sorted(c["set"] for c in delete["changes"]) == [db_node, db_node], "web and db in one batch"
    got = names(cloud)
    assert ip[db_node] not in got[f"web.{SUFFIX}"]["A"], got

    # A new worker enters the mesh service's name once Ready, at its launch (no reconcile).
    cloud.scale("worker", 2)
    wait_for(lambda: len(cloud.in_service("worker")) == 2, 120, "a new worker in service")
    settle(cloud)
    new = next(i for i in cloud.in_service("worker") if i not in workers)
    assert cloud.state()["hosts"][new]["ip"] in names(cloud)[f"web.{SUFFIX}"]["A"], names(cloud)

    # A service removed: its name and owner go with the next reconcile.
    assert cloud.docker(cloud.in_service("manager")[0], "service", "rm", "web").returncode == 0
    cloud.reconcile()
    assert f"web.{SUFFIX}" not in names(cloud), names(cloud)


@pytest.mark.expect_denials
@pytest.mark.cluster_params(ServiceRecordSuffix=SUFFIX)
def test_the_roles_may_change_no_name_outside_the_suffix(cloud):
    r53 = boto3.client("route53", endpoint_url=cloud.endpoint, region_name=REGION,
                       aws_access_key_id=cloud.role_keys["ReconcileRole"], aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 1}))

    def change(name: str, kind: str = "A", value: str = "10.9.9.9") -> None:
        r53.change_resource_record_sets(HostedZoneId=cloud.cluster.zone_id.split("/")[-1], ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": kind, "SetIdentifier": "probe",
                                                      "MultiValueAnswer": True, "TTL": 5,
                                                      "ResourceRecords": [{"Value": value}]}}]})

    change(f"api.{SUFFIX}")  # under the suffix: allowed
    for name, kind, value in [("api.swarm.internal", "A", "10.9.9.9"), (SUFFIX, "A", "10.9.9.9"),
                              (f"api.{SUFFIX}", "CNAME", "elsewhere.example.com")]:
        with pytest.raises(ClientError) as e:
            change(name, kind, value)
        assert e.value.response["Error"]["Code"] == "AccessDenied", (name, kind, e.value.response)
    denials = cloud.denials()
    assert [d["action"] for d in denials] == ["route53:ChangeResourceRecordSets"] * 3, denials
