"""Service names in Route 53 (ServiceRecordSuffix): a service labelled swarm-lifecycle.dns-name
gets a multivalue A record of its nodes and an owner TXT record; a leaving node leaves every
name before it drains and is held TTL + extra after that change; records the project did not
create are left alone; the roles may change no name outside the suffix."""

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import bin_dir, scale_out, settle
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


def cli(lc, *args: str) -> subprocess.CompletedProcess:
    # As the template's OperatorRole (the cloud's teardown fails on a denial).
    return subprocess.run([str(bin_dir() / "swarm-lifecycle"), *args], env=lc.operator_env(), capture_output=True,
                          text=True, timeout=300)


def refusals_told(lc) -> list[tuple[str, str, str]]:
    return [(e["detail"]["cluster"], e["detail"]["service"], e["detail"]["dnsName"])
            for e in lc.published("Swarm Service Name Refused")]


@pytest.mark.cluster_params(ServiceRecordSuffix=SUFFIX)
def test_two_clusters_in_one_zone_keep_their_own_names_and_the_operator_moves_one(cloud):
    blue = cloud  # the fixture's deployment ("demo")
    green = cloud.add_cluster("green", bin_dir(), params={"ServiceRecordSuffix": SUFFIX})
    for lc in (blue, green):
        lc.scale("manager", 1)
        lc.scale("worker", 1)
    for lc in (blue, green):
        wait_for(lambda lc=lc: len(lc.in_service("manager")) == 1 and len(lc.in_service("worker")) == 1, 180,
                 f"{lc.cluster.name}: a manager and a worker in service")
    settle(cloud)
    ip = {i: h["ip"] for i, h in cloud.state()["hosts"].items()}
    # Both clusters ask for api; green also for cart. Blue reconciles first and owns api.
    service(blue, "api", "--label", f"swarm-lifecycle.dns-name=api.{SUFFIX}", "--publish", "8080:80")
    service(green, "api", "--label", f"swarm-lifecycle.dns-name=api.{SUFFIX}", "--publish", "8080:80")
    service(green, "cart", "--label", f"swarm-lifecycle.dns-name=cart.{SUFFIX}", "--publish", "8081:80")
    blue.reconcile()
    green.reconcile()
    blue.reconcile()
    got = names(cloud)
    assert got[f"api.{SUFFIX}"]["A"] == [ip[blue.in_service("worker")[0]]], got
    assert "cluster=demo" in got[f"api.{SUFFIX}"]["TXT"][0], got
    assert got[f"cart.{SUFFIX}"]["A"] == [ip[green.in_service("worker")[0]]], got
    assert "cluster=green" in got[f"cart.{SUFFIX}"]["TXT"][0], got
    # Green's claim on blue's name is refused, told once however often it runs.
    green.reconcile()
    assert refusals_told(cloud) == [("green", "api", f"api.{SUFFIX}")], refusals_told(cloud)

    # The operator's status lists each name under the suffix with its owner and values.
    r = cli(blue, "status", "--json")
    assert r.returncode == 0, r.stderr
    listed = {n["name"]: (n["cluster"], n["service"], [v["ip"] for v in n["values"]])
              for n in json.loads(r.stdout)["service_names"]}
    assert listed == {f"api.{SUFFIX}": ("demo", "api", got[f"api.{SUFFIX}"]["A"]),
                      f"cart.{SUFFIX}": ("green", "cart", got[f"cart.{SUFFIX}"]["A"])}, listed

    # Blue's label moves to another name, and a new service asks for a name outside the suffix:
    # `dns sync` moves the one and refuses the other now (a dry run first changes and tells nothing).
    m = blue.in_service("manager")[0]
    r = blue.docker(m, "service", "update", "--detach", "--label-add", f"swarm-lifecycle.dns-name=web.{SUFFIX}", "api")
    assert r.returncode == 0, r.stderr
    service(blue, "bad", "--label", "swarm-lifecycle.dns-name=bad.example.com", "--publish", "8082:80")
    r = cli(blue, "dns", "sync", "--dry-run")
    assert r.returncode == 0 and "service names: would make 4 change(s)" in r.stdout, (r.stdout, r.stderr)
    assert names(cloud) == got and len(refusals_told(cloud)) == 1, "a dry run changes and tells nothing"
    r = cli(blue, "dns", "sync")
    assert r.returncode == 0 and "service names: made 4 change(s)" in r.stdout, (r.stdout, r.stderr)
    assert "refused: bad.example.com (bad): outside the names" in r.stdout, r.stdout
    # The command printed it; without ACTION_EVENT_BUS it tells no one, and leaves the telling
    # to the function's next run.
    assert len(refusals_told(cloud)) == 1, refusals_told(cloud)
    blue.reconcile()
    assert refusals_told(cloud)[1:] == [("demo", "bad", "bad.example.com")], refusals_told(cloud)
    # The service gone, the refusal is forgotten at the next run.
    assert blue.docker(m, "service", "rm", "bad").returncode == 0
    blue.reconcile()
    told = {c: [p["Name"] for p in cloud.client("ssm").get_parameters_by_path(
        Path=f"/swarm/{c}/told-names", Recursive=True)["Parameters"]] for c in ("demo", "green")}
    assert told["demo"] == [] and len(told["green"]) == 1, told
    got = names(cloud)
    assert f"api.{SUFFIX}" not in got and "cluster=demo" in got[f"web.{SUFFIX}"]["TXT"][0], got
    assert got[f"cart.{SUFFIX}"]["A"] == [ip[green.in_service("worker")[0]]], "green's name untouched"
    # Free now: green takes api at its next run, and its refusal is forgotten.
    green.reconcile()
    got = names(cloud)
    assert "cluster=green" in got[f"api.{SUFFIX}"]["TXT"][0], got
    params = cloud.client("ssm").get_parameters_by_path(Path="/swarm/green/told-names", Recursive=True)["Parameters"]
    assert params == [], params
    assert len(refusals_told(cloud)) == 2, refusals_told(cloud)
