"""infra/template.yaml rendered as CloudFormation would (localcloud.iam's renderer): what an
ECS-backed deployment adds to the instances, and that without EcsClusterArn nothing ECS exists;
infra/worker-group.yaml imports only what the cluster's stack exports, and boots its nodes as
the cluster boots its workers."""

from __future__ import annotations

import base64
from pathlib import Path

from localcloud.iam import template_renderer

ROOT = Path(__file__).resolve().parents[2]
ECS_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
LAUNCH_TEMPLATES = ("ManagerLaunchTemplate", "WorkerLaunchTemplate")


def rendered(**params: str):
    t, r = template_renderer(ROOT / "infra" / "template.yaml", params)
    res = t["Resources"]
    user_data = {lt: base64.b64decode(r.resolve(res[lt]["Properties"]["LaunchTemplateData"]["UserData"])).decode()
                 for lt in LAUNCH_TEMPLATES}
    policies = {role: r.resolve(res[role]["Properties"]["ManagedPolicyArns"]) for role in ("ManagerRole", "WorkerRole")}
    ecs_resources = [lid for lid, spec in res.items() if spec.get("Condition") == "HasEcs" and r.condition("HasEcs")]
    return user_data, policies, ecs_resources


def test_an_ecs_backed_deployment_registers_its_instances_with_the_cluster():
    user_data, policies, ecs_resources = rendered(EcsClusterArn="arn:aws:ecs:us-east-1:123456789012:cluster/payments")
    for lt, script in user_data.items():
        assert 'echo "ECS_CLUSTER=payments" >> /etc/ecs/ecs.config' in script, (lt, script)
        assert "dnf install -y ecs-init" in script and "systemctl enable --now --no-block ecs.service" in script, script
        # The agent starts after Docker, which the swarm needs anyway.
        assert script.index("enable --now docker") < script.index("ecs.service"), script
    assert all(ECS_POLICY in arns for arns in policies.values()), policies
    assert ecs_resources, "the ECS rule is created"


def test_without_an_ecs_cluster_nothing_ecs_is_created():
    user_data, policies, ecs_resources = rendered()
    for lt, script in user_data.items():
        assert not any(w in script for w in ("ecs-init", "ECS_CLUSTER", "ecs.service")), (lt, script)
        assert script.startswith("#!/bin/bash\nset -euo pipefail\n"), script
    assert all(ECS_POLICY not in arns for arns in policies.values()), policies
    assert ecs_resources == []


def imports(node) -> set[str]:
    """The export names infra/worker-group.yaml imports ("${ClusterStack}-<name>")."""
    if isinstance(node, list):
        return set().union(*(imports(x) for x in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    if set(node) == {"Fn::ImportValue"}:
        return {node["Fn::ImportValue"]["Fn::Sub"]}
    return set().union(*(imports(v) for v in node.values())) if node else set()


def test_a_worker_group_imports_only_what_the_cluster_exports_and_boots_as_its_workers():
    t, r = template_renderer(ROOT / "infra" / "template.yaml", {"StackName": "prod", "ClusterName": "prod"},
                             physical={"NodeSecurityGroup": "sg-1"},
                             attributes={"WorkerProfile.Arn": "p", "LaunchFunction.Arn": "l", "TerminateFunction.Arn": "t",
                                         "UndeliveredEvents.Arn": "q"})
    exports = {r.resolve(o["Export"]["Name"]): r.resolve(o["Value"]) for o in t["Outputs"].values() if "Export" in o}
    g, _ = template_renderer(ROOT / "infra" / "worker-group.yaml", {})
    wanted = {name.replace("${ClusterStack}", "prod") for name in imports(g["Resources"])}
    assert wanted and wanted <= set(exports), wanted - set(exports)
    for extra in ("", "nvidia-ctk runtime configure"):
        g, gr = template_renderer(ROOT / "infra" / "worker-group.yaml",
                                  {"ClusterStack": "prod", "GroupName": "gpu", "ExtraUserData": extra}, exports=exports)
        ours = base64.b64decode(gr.resolve(g["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]))
        workers = base64.b64decode(r.resolve(t["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]))
        ours, workers = ours.decode(), workers.decode()
        assert ours.rstrip("\n") == (workers.rstrip("\n") + "\n" + extra).rstrip("\n"), (ours, workers)


def test_shared_storage_is_mounted_at_boot_before_docker_and_named_to_the_functions():
    params = {"SharedStorage": "efs"}
    t, r = template_renderer(ROOT / "infra" / "template.yaml", params,
                             physical={"SharedFileSystem": "fs-0123", "SharedStorageTarget1": "fsmt-1"})
    res = t["Resources"]
    for lt in LAUNCH_TEMPLATES:
        script = base64.b64decode(r.resolve(res[lt]["Properties"]["LaunchTemplateData"]["UserData"])).decode()
        assert "fs-0123:/ /cluster efs _netdev,noresvport,tls,iam 0 0" in script, script
        assert script.index("mount /cluster") < script.index("dnf install -y docker"), script
    paths = [r.resolve(spec["Properties"]["Environment"]["Variables"]["SHARED_STORAGE_PATH"]) for spec in res.values()
             if spec["Type"] == "AWS::Lambda::Function"]
    assert paths and set(paths) == {"/cluster"}, paths
    efs = [lid for lid, spec in res.items() if spec.get("Condition", "").startswith(("HasSharedStorage", "SharedStorageIn"))]
    assert set(efs) >= {"SharedFileSystem", "SharedStorageSecurityGroup", "NodeToSharedStorageEgress", "SharedStorageTarget1"}
    # Without the option: no mount, and the functions check nothing.
    t, r = template_renderer(ROOT / "infra" / "template.yaml", {})
    for lt in LAUNCH_TEMPLATES:
        script = base64.b64decode(r.resolve(t["Resources"][lt]["Properties"]["LaunchTemplateData"]["UserData"])).decode()
        assert "/cluster efs" not in script and "amazon-efs-utils" not in script, script
    paths = [r.resolve(spec["Properties"]["Environment"]["Variables"]["SHARED_STORAGE_PATH"])
             for spec in t["Resources"].values() if spec["Type"] == "AWS::Lambda::Function"]
    assert set(paths) == {""}, paths
