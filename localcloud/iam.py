"""IAM for the local cloud: the roles and the key policy of infra/template.yaml, evaluated on
every request the way AWS evaluates them.

Owns: rendering the template's policies (the intrinsic functions the roles use), the
credentials of each principal, the evaluation (explicit Deny wins, then an Allow whose action,
resource and conditions match), the request context of each operation the project calls, and
AWS's denial responses. It does not touch moto's state.

Why not moto's own access control: moto/iam/access_control.py evaluates actions only ("TODO
add support for the Resource and Condition parts of IAM policies"), and the template's
least privilege lives in resources and conditions. The maintained evaluators that do both
are a Node package (@cloud-copilot/iam-simulate) and a Rust crate (iam-rs); the local cloud
is Python and evaluates on every request, so the part needed is written here.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import functools
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
POLICIES = Path(__file__).resolve().parent / "policies"
ADMIN_KEY = "test"  # the test driver's credentials: an administrator, as a person deploying

# The principals the template defines, and who uses them here.
FUNCTION_ROLES = {"launch-hook": "LifecycleRole", "terminate-hook": "LifecycleRole", "ecs-state-change": "EcsRole",
                  "instance-notice": "NoticeRole", "spot-notice": "NoticeRole", "scheduled-change": "NoticeRole",
                  "reconcile": "ReconcileRole", "drain-check": "DrainCheckRole"}
INSTANCE_ROLES = {"manager": "ManagerRole", "worker": "WorkerRole"}


# ---------------------------------------------------------------------------- the template
class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


class Renderer:
    """Resolves the intrinsic functions the template's policies and user data use (Ref, Sub,
    GetAtt, If, Join, Split, Select, FindInMap, Base64, Equals, Not, ImportValue), with the stack's parameters and the
    physical ids given."""

    def __init__(self, template: dict[str, Any], params: dict[str, str], region: str, account: str,
                 physical: dict[str, str], attributes: dict[str, str], exports: dict[str, str] | None = None):
        self.t = template
        self.exports = exports or {}
        defaults = {k: str(v.get("Default", "")) for k, v in (template.get("Parameters") or {}).items()}
        self.params = {**defaults, **{k: str(v) for k, v in params.items()},
                       "AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws",
                       "AWS::StackName": params.get("StackName", "swarm"), "AWS::NoValue": None}
        self.physical = physical
        self.attributes = attributes

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.t["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                if v not in self.params:
                    return self.physical[v]
                kind = str(((self.t.get("Parameters") or {}).get(v) or {}).get("Type", ""))
                if kind == "CommaDelimitedList" or kind.startswith("List<"):  # Ref gives the list
                    return [x for x in str(self.params[v]).split(",") if x] if self.params[v] else []
                return self.params[v]
            if k == "Fn::GetAtt":
                return self.attributes[".".join(v)]
            if k == "Fn::Sub":
                text, extra = (v, {}) if isinstance(v, str) else (v[0], {a: self.resolve(b) for a, b in v[1].items()})
                return self.sub(text, extra)
            if k == "Fn::If":
                return self.resolve(v[1] if self.condition(v[0]) else v[2])
            if k == "Fn::Equals":
                a, b = (self.resolve(x) for x in v)
                return str(a) == str(b)
            if k == "Fn::Not":
                return not self.resolve(v[0])
            if k == "Fn::Join":
                return v[0].join(str(x) for x in self.resolve(v[1]))
            if k == "Fn::FindInMap":
                name, key, attr = (str(self.resolve(x)) for x in v)
                return self.t["Mappings"][name][key][attr]
            if k == "Fn::Split":
                return str(self.resolve(v[1])).split(v[0])
            if k == "Fn::Select":
                return self.resolve(v[1])[int(v[0])]
            if k == "Fn::ImportValue":
                return self.exports[str(self.resolve(v))]
            if k == "Fn::Base64":
                return base64.b64encode(str(self.resolve(v)).encode()).decode()
            if k == "Condition":
                return self.condition(v)
        return {k: self.resolve(v) for k, v in node.items()}

    def sub(self, text: str, extra: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if name in self.params:
                return str(self.params[name])
            if "." in name:
                return self.attributes[name]
            return self.physical[name]

        return re.sub(r"\$\{([^}]+)\}", one, text)


@dataclass
class Principal:
    name: str  # the template's logical id, or "admin"
    arn: str
    session: str
    cluster: str = ""  # the deployment (ClusterName) whose template defined it
    policies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (policy name, document)

    @property
    def caller_arn(self) -> str:
        if self.name == "admin":
            return self.arn
        return f"arn:aws:sts::{self.arn.split(':')[4]}:assumed-role/{self.name}/{self.session}"


def managed_policy(arn: str) -> dict[str, Any]:
    for p in POLICIES.glob("*.json"):
        data = json.loads(p.read_text())
        if data.get("Arn") == arn:
            return data
    raise KeyError(f"AWS managed policy {arn} is not kept under localcloud/policies/")


@functools.lru_cache(maxsize=8)
def _parsed(template_path: Path, mtime_ns: int) -> dict[str, Any]:
    return yaml.load(template_path.read_text(), Loader=_Loader)


def load_template(template_path: Path) -> dict[str, Any]:
    """The template parsed (once per version of the file: a deploy and a scenario read it many
    times), as a copy the caller may change."""
    return copy.deepcopy(_parsed(template_path, template_path.stat().st_mtime_ns))


def alarm_topic_arn(region: str, account: str, cluster: str) -> str:
    """The stack's AlarmTopic (its TopicName: swarm-<cluster>-alarms); Ref of a topic is its ARN."""
    return f"arn:aws:sns:{region}:{account}:swarm-{cluster}-alarms"


def render(template_path: Path, params: dict[str, str], region: str, account: str,
           physical: dict[str, str]) -> tuple[dict[str, Principal], dict[str, Any]]:
    """The template's roles (inline and managed policies) and the token key's policy."""
    t = load_template(template_path)
    res = t["Resources"]
    attributes = {f"{lid}.Arn": f"arn:aws:iam::{account}:role/{lid}" for lid, r in res.items()
                  if r["Type"] == "AWS::IAM::Role"}
    cluster = params.get("ClusterName", "swarm")
    physical = {"AlarmTopic": alarm_topic_arn(region, account, cluster), **physical}
    # Each queue by the name its QueueName gives it (a queue's Arn and QueueName attributes).
    names = Renderer(t, params, region, account, physical, attributes)
    for lid, spec in res.items():
        if spec["Type"] == "AWS::SQS::Queue" and "QueueName" in spec.get("Properties", {}):
            name = names.resolve(spec["Properties"]["QueueName"])
            attributes[f"{lid}.Arn"] = f"arn:aws:sqs:{region}:{account}:{name}"
            attributes[f"{lid}.QueueName"] = name
    r = Renderer(t, params, region, account, physical, attributes)
    roles: dict[str, Principal] = {}
    for lid, spec in res.items():
        if spec["Type"] != "AWS::IAM::Role":
            continue
        props = spec["Properties"]
        p = Principal(name=lid, arn=attributes[f"{lid}.Arn"], session=lid)
        for pol in props.get("Policies") or []:
            p.policies.append((pol["PolicyName"], r.resolve(pol["PolicyDocument"])))
        for arn in r.resolve(props.get("ManagedPolicyArns") or []):
            m = managed_policy(arn)
            p.policies.append((f"{arn.split('/')[-1]} ({m['VersionId']})", m["Document"]))
        roles[lid] = p
    # A role's policies kept in resources of their own (AWS::IAM::RolePolicy), e.g. one naming the
    # role's own ARN, which its inline Policies cannot without a circular reference.
    for spec in res.values():
        if spec["Type"] == "AWS::IAM::RolePolicy":
            props = spec["Properties"]
            roles[props["RoleName"]["Ref"]].policies.append((props["PolicyName"], r.resolve(props["PolicyDocument"])))
    key_policy = r.resolve(res["TokenKey"]["Properties"]["KeyPolicy"])
    alias = r.resolve(res["TokenKeyAlias"]["Properties"]["AliasName"])
    return roles, {"alias": alias, "policy": key_policy}


def key_id(alias: str) -> str:
    """The id of the key the local KMS creates for the template's key of `alias`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, alias))


def template_renderer(template_path: Path, params: dict[str, str], physical: dict[str, str] | None = None,
                      attributes: dict[str, str] | None = None,
                      exports: dict[str, str] | None = None) -> tuple[dict[str, Any], Renderer]:
    """The template and a renderer for it with the stack's parameters (and, for the parts that
    name them, the physical ids, attributes and other stacks' exports given)."""
    t = load_template(template_path)
    return t, Renderer(t, params, "us-east-1", "123456789012", physical=physical or {}, attributes=attributes or {},
                       exports=exports)


def refresh_preferences(template_path: Path, group: str, params: dict[str, str]) -> dict[str, Any]:
    """The instance refresh preferences of a group's UpdatePolicy (AutoScalingInstanceRefresh):
    what CloudFormation starts the refresh with when a stack update changes the group's launch
    template."""
    t, r = template_renderer(template_path, params)
    return r.resolve(t["Resources"][group]["UpdatePolicy"]["AutoScalingInstanceRefresh"]["Preferences"])


# ---------------------------------------------------------------------------- evaluation
def _like(pattern: str, value: str, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _condition_holds(op: str, key: str, want: Any, context: dict[str, Any]) -> bool:
    if_exists = op.endswith("IfExists")
    base = op.removesuffix("IfExists")
    qualifier = ""
    if ":" in base:
        qualifier, base = base.split(":", 1)
    wants = [str(w) for w in _as_list(want)]
    present = key in context  # condition keys are case-insensitive; callers give them lowercase
    if base == "Null":
        return (not present) == (wants[0].lower() == "true")
    if not present:
        # ForAllValues holds for a missing key (the empty set); otherwise a negated operator
        # holds for it, a positive one does not (unless IfExists).
        return qualifier == "ForAllValues" or if_exists or base.startswith(("StringNot", "ArnNot"))
    values = [str(v) for v in _as_list(context[key])]
    match = {
        "StringEquals": lambda v, w: v == w,
        "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
        "StringLike": lambda v, w: _like(w, v),
        "ArnEquals": lambda v, w: v == w,
        "ArnLike": lambda v, w: _like(w, v),
        "Bool": lambda v, w: v.lower() == w.lower(),
    }
    negated = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
               "ArnNotLike": "ArnLike"}
    if base in negated:
        f = match[negated[base]]
        return not any(f(v, w) for v in values for w in wants)
    if base not in match:
        raise ValueError(f"condition operator {op} is not evaluated by the local cloud")
    f = match[base]
    if qualifier == "ForAllValues":
        return all(any(f(v, w) for w in wants) for v in values)
    return any(f(v, w) for v in values for w in wants)


def statement_matches(st: dict[str, Any], action: str, resource: str, context: dict[str, Any],
                      principal_arn: str | None = None) -> bool:
    if "Principal" in st and principal_arn is not None:
        aws = _as_list((st["Principal"] or {}).get("AWS", [])) if isinstance(st["Principal"], dict) else [st["Principal"]]
        if not any(p == "*" or p == principal_arn for p in aws):
            return False
    if "Action" in st and not any(_like(a, action, case=False) for a in _as_list(st["Action"])):
        return False
    if "NotAction" in st and any(_like(a, action, case=False) for a in _as_list(st["NotAction"])):
        return False
    if "Resource" in st and not any(_like(r, resource) for r in _as_list(st["Resource"])):
        return False
    if "NotResource" in st and any(_like(r, resource) for r in _as_list(st["NotResource"])):
        return False
    lowered = {k.lower(): v for k, v in context.items()}
    for op, keys in (st.get("Condition") or {}).items():
        for key, want in keys.items():
            if not _condition_holds(op, key.lower(), want, lowered):
                return False
    return True


def evaluate(policies: list[tuple[str, dict[str, Any]]], action: str, resource: str,
             context: dict[str, Any]) -> tuple[str, str | None]:
    """("allow" | "explicit-deny" | "implicit-deny", the deciding policy and statement)."""
    allowed = None
    for name, doc in policies:
        for i, st in enumerate(_as_list(doc.get("Statement", []))):
            if statement_matches(st, action, resource, context):
                where = f"{name}/{st.get('Sid', i)}"
                if st["Effect"] == "Deny":
                    return "explicit-deny", where
                allowed = allowed or where
    return ("allow", allowed) if allowed else ("implicit-deny", None)


# ---------------------------------------------------------------------------- requests
@dataclass
class Check:
    """One authorization AWS makes for a request: an action on a resource, in a context."""
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    kms_key: str | None = None  # a KMS action on behalf of Parameter Store: the key policy decides too


@dataclass
class Request:
    service: str
    operation: str
    params: dict[str, Any]
    access_key: str


def parse_request(environ: dict[str, Any], body: bytes) -> Request:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    cred = auth.split("Credential=")[1].split(",")[0] if "Credential=" in auth else ""
    parts = cred.split("/")
    access_key, service = (parts[0], parts[3]) if len(parts) > 3 else ("", "?")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "")
    params: dict[str, Any] = {}
    if target:
        op = target.split(".")[-1]
        try:
            params = json.loads(body or b"{}")
        except json.JSONDecodeError:
            params = {}
    elif service == "route53":
        op, params = _route53_operation(method, path, body)
    elif service == "lambda":
        op, params = _lambda_operation(method, path)
    else:
        form = parse_qs(body.decode(errors="replace")) if method == "POST" else parse_qs(environ.get("QUERY_STRING", ""))
        params = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
        op = str(params.get("Action", "?"))
    return Request(service=service, operation=op, params=params, access_key=access_key)


def _lambda_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """Lambda's REST operations the scenarios' principals make (the Lambda API reference's
    request syntax: /2015-03-31/functions/<name>/configuration, .../policy, .../policy/<sid>)."""
    p = unquote(path).rstrip("/").split("/")
    if len(p) < 4 or p[2] != "functions":
        return "?", {}
    name = p[3].rsplit(":function:", 1)[-1]
    tail = "/".join(p[4:])
    op = {("GET", "configuration"): "GetFunctionConfiguration", ("GET", "policy"): "GetPolicy",
          ("POST", "policy"): "AddPermission"}.get((method, tail))
    if op is None and method == "DELETE" and tail.startswith("policy/"):
        op = "RemovePermission"
    return op or "?", {"FunctionName": name}


def _route53_operation(method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, Any]]:
    p = unquote(path).split("/")  # ['', '2013-04-01', 'hostedzone', 'Z…', 'rrset']
    if len(p) >= 5 and p[2] == "hostedzone" and p[4] == "rrset" and method == "POST":
        return "ChangeResourceRecordSets", {"HostedZoneId": p[3], "Changes": _change_batch(body)}
    if len(p) >= 5 and p[2] == "hostedzone" and p[4] == "rrset":
        return "ListResourceRecordSets", {"HostedZoneId": p[3]}
    if len(p) >= 4 and p[2] == "change":
        return "GetChange", {"Id": p[3]}
    if len(p) >= 4 and p[2] == "hostedzone":
        return {"GET": "GetHostedZone", "DELETE": "DeleteHostedZone"}.get(method, "?"), {"HostedZoneId": p[3]}
    if len(p) >= 3 and p[2] == "hostedzone":
        return ("CreateHostedZone" if method == "POST" else "ListHostedZones"), {}
    return f"{method} {path}", {}


def _change_batch(body: bytes) -> list[dict[str, str]]:
    """The changes of a ChangeResourceRecordSets body: action, name, type of each."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body or b"<x/>")
    except ET.ParseError:
        return []
    local = lambda e: e.tag.rsplit("}", 1)[-1]  # noqa: E731
    out = []
    for change in (e for e in root.iter() if local(e) == "Change"):
        fields = {local(e): (e.text or "") for e in change.iter()}
        out.append({"Action": fields.get("Action", ""), "Name": fields.get("Name", ""), "Type": fields.get("Type", "")})
    return out


def _normalized_record_name(name: str) -> str:
    """Route 53's normalization for its condition keys: lowercase, no trailing dot."""
    return name.lower().rstrip(".")


def _ids(value: Any) -> list[str]:
    return [str(x) for x in _as_list(value)] if value else []


def _member_list(params: dict[str, Any], prefix: str) -> list[str]:
    """Query-protocol lists: InstanceIds.member.1=… / InstanceId.1=…"""
    return [str(v) for k, v in sorted(params.items()) if k.startswith(prefix + ".")]


class Authority:
    """The principals and keys of one deployment, and the cloud's knowledge of resources
    (instance tags, group ARNs, parameter keys) that the request context needs."""

    def __init__(self, region: str, account: str):
        self.region = region
        self.account = account
        self.principals: dict[str, Principal] = {ADMIN_KEY: Principal("admin", f"arn:aws:iam::{account}:root", "driver")}
        self.keys: dict[str, dict[str, Any]] = {}  # alias -> {"arn", "policy"}
        self.denials: list[dict[str, Any]] = []
        self.allowed: dict[tuple[str, str], int] = {}  # (principal, action) -> count
        self.granted: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        aws_ssm = json.loads((POLICIES / "aws-ssm-key.json").read_text())
        self.add_key(aws_ssm["Alias"], aws_ssm["Document"])

    # -- setup -------------------------------------------------------------------------------
    def load(self, template_path: Path, params: dict[str, str], physical: dict[str, str]) -> dict[str, str]:
        roles, key = render(template_path, params, self.region, self.account, physical)
        keys = {}
        cluster = str(params.get("ClusterName", ""))
        for lid, p in roles.items():
            # One key per deployment's role: two stacks in one account have two of each role.
            access_key = "ASIA" + hashlib.sha1(f"{cluster}/{lid}".encode()).hexdigest().upper()[:16]
            p.cluster = cluster
            self.principals[access_key] = p
            keys[lid] = access_key
            self.granted[lid] = sorted({a for _, doc in p.policies for st in _as_list(doc["Statement"])
                                        if st["Effect"] == "Allow" for a in _as_list(st.get("Action", []))})
        self.add_key(key["alias"], key["policy"])
        return keys

    def add_key(self, alias: str, policy: dict[str, Any]) -> None:
        kid = key_id(alias)
        self.keys[alias] = {"arn": f"arn:aws:kms:{self.region}:{self.account}:key/{kid}", "policy": policy}

    def key(self, key_id: str | None) -> dict[str, Any] | None:
        key_id = key_id or "alias/aws/ssm"
        if key_id.startswith("arn:") and ":alias/" in key_id:
            key_id = "alias/" + key_id.split(":alias/", 1)[1]
        for alias, k in self.keys.items():
            if key_id in (alias, k["arn"], k["arn"].split("/")[-1]):
                return k
        return None

    # -- the checks a request needs ----------------------------------------------------------------
    def checks(self, req: Request, cloud: Any) -> list[Check]:
        s, op, p = req.service, req.operation, req.params
        action = f"{s}:{op}"
        arn = f"arn:aws:{s}:{self.region}:{self.account}"
        if s == "ssm" and op == "SendCommand":
            doc = p.get("DocumentName", "")
            out = [Check(action, f"arn:aws:ssm:{self.region}::document/{doc}")]
            for iid in _ids(p.get("InstanceIds")):
                tags = cloud.instance_tags(iid)
                out.append(Check(action, f"arn:aws:ec2:{self.region}:{self.account}:instance/{iid}",
                                 {f"ssm:resourceTag/{k}": v for k, v in tags.items()}))
            return out
        if s == "ssm" and op in ("PutParameter", "GetParameter", "DeleteParameter", "GetParameterHistory"):
            name = str(p.get("Name", ""))
            param_arn = self.parameter_arn(name)
            out = [Check(action, param_arn)]
            if op == "PutParameter" and p.get("Type") == "SecureString":
                out.append(self.kms_check("kms:Encrypt", p.get("KeyId"), param_arn))
            if op == "GetParameter" and p.get("WithDecryption"):
                stored = cloud.parameter_key(name)
                if stored is not None:
                    out.append(self.kms_check("kms:Decrypt", stored, param_arn))
            return out
        if s == "ssm" and op == "DeleteParameters":
            return [Check(action, self.parameter_arn(name)) for name in _ids(p.get("Names"))]
        if s == "ssm" and op == "GetParameters":
            out = []
            for name in _ids(p.get("Names")):
                out.append(Check(action, self.parameter_arn(name)))
                stored = cloud.parameter_key(name) if p.get("WithDecryption") else None
                if stored is not None:
                    out.append(self.kms_check("kms:Decrypt", stored, self.parameter_arn(name)))
            return out
        if s == "ssm" and op == "GetParametersByPath":
            return [Check(action, self.parameter_arn(str(p.get("Path", ""))))]
        if s == "autoscaling" and op in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat",
                                         "TerminateInstanceInAutoScalingGroup", "SetDesiredCapacity"):
            # TerminateInstanceInAutoScalingGroup names only the instance: it is authorized on
            # the group the instance is in (its resource type is autoScalingGroup).
            group = str(p.get("AutoScalingGroupName") or cloud.launched_in.get(str(p.get("InstanceId", "")), ""))
            # The group's tags as autoscaling:ResourceTag/<key> (and the global aws:ResourceTag):
            # "use autoscaling:ResourceTag/tag-key to allow user actions on Auto Scaling groups
            # with specific tags" (Auto Scaling user guide, tags for security).
            tags = cloud.group_tags(group)
            context = {f"{prefix}:ResourceTag/{k}": v for k, v in tags.items() for prefix in ("autoscaling", "aws")}
            return [Check(action, cloud.group_arn(group) or f"{arn}:autoScalingGroup:*:autoScalingGroupName/{group}",
                          context)]
        if s == "route53" and op == "ChangeResourceRecordSets":
            changes = p.get("Changes") or []
            return [Check(action, f"arn:aws:route53:::hostedzone/{p['HostedZoneId']}", {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames":
                    sorted({_normalized_record_name(c["Name"]) for c in changes}),
                "route53:ChangeResourceRecordSetsRecordTypes": sorted({c["Type"].upper() for c in changes}),
                "route53:ChangeResourceRecordSetsActions": sorted({c["Action"].upper() for c in changes}),
            })]
        if s == "events" and op == "PutEvents":
            # One authorization per entry, on its bus, with its source and detail-type as the
            # condition keys events:source and events:detail-type (EventBridge User Guide, "Using
            # IAM policy conditions"). Any entry refused refuses the request.
            def bus_arn(bus: str) -> str:
                return bus if bus.startswith("arn:") else f"{arn}:event-bus/{bus}"
            return [Check(action, bus_arn(str(e.get("EventBusName") or "default")),
                          {"events:source": str(e.get("Source", "")), "events:detail-type": str(e.get("DetailType", ""))})
                    for e in p.get("Entries") or []] or [Check(action, bus_arn("default"))]
        if s == "sqs" and p.get("QueueUrl"):
            # The queue's ARN from its URL (https://sqs.<region>.amazonaws.com/<account>/<name>).
            account, name = str(p["QueueUrl"]).rstrip("/").split("/")[-2:]
            return [Check(action, f"arn:aws:sqs:{self.region}:{account}:{name}")]
        if s == "sns" and p.get("TopicArn"):
            return [Check(action, str(p["TopicArn"]))]
        if s == "lambda" and p.get("FunctionName"):
            return [Check(action, f"arn:aws:lambda:{self.region}:{self.account}:function:{p['FunctionName']}")]
        if s == "events" and op in ("DescribeRule", "ListTargetsByRule", "EnableRule", "DisableRule", "PutRule",
                                    "DeleteRule", "PutTargets", "RemoveTargets"):
            rule, bus = str(p.get("Name") or p.get("Rule") or ""), str(p.get("EventBusName") or "default")
            return [Check(action, f"{arn}:rule/{rule}" if bus == "default" else f"{arn}:rule/{bus}/{rule}")]
        if s == "cloudformation" and p.get("StackName"):
            name = str(p["StackName"])
            stack = name if name.startswith("arn:") else next(
                (st["StackId"] for st in cloud.stacks.values() if st["StackName"] == name), f"{arn}:stack/{name}/unknown")
            return [Check(action, stack)]
        if s == "route53" and "HostedZoneId" in p:
            return [Check(action, f"arn:aws:route53:::hostedzone/{p['HostedZoneId']}")]
        if s == "sts" and op == "GetCallerIdentity":
            return []  # "No permissions are required to perform this operation" (services/iam.py)
        if s == "iam" and op == "SimulatePrincipalPolicy":
            return [Check(action, str(p.get("PolicySourceArn", "")))]
        if s == "iam" and p.get("RoleName"):
            return [Check(action, f"arn:aws:iam::{self.account}:role/{p['RoleName']}")]
        if s == "route53" and op == "GetChange":
            return [Check(action, f"arn:aws:route53:::change/{p['Id']}")]
        return [Check(action, "*")]

    def parameter_arn(self, name: str) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account}:parameter/{name.lstrip('/')}"

    def kms_check(self, action: str, key_id: str | None, param_arn: str) -> Check:
        k = self.key(key_id)
        resource = k["arn"] if k else f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"
        return Check(action, resource, {
            "kms:ViaService": f"ssm.{self.region}.amazonaws.com",
            "kms:CallerAccount": self.account,
            "kms:EncryptionContext:PARAMETER_ARN": param_arn,
        }, kms_key=key_id or "alias/aws/ssm")

    # -- deciding ------------------------------------------------------------------------------
    def decide(self, principal: Principal, check: Check) -> tuple[bool, str]:
        if principal.name == "admin":
            return True, "admin"
        effect, where = evaluate(principal.policies, check.action, check.resource, check.context)
        if check.kms_key is None:
            return effect == "allow", effect if effect != "allow" else str(where)
        if effect == "explicit-deny":
            return False, "of an explicit deny in an identity-based policy"
        # KMS: the key policy decides; a statement for the account root delegates to IAM.
        k = self.key(check.kms_key)
        if k is None:
            return False, "the key does not exist"
        root = f"arn:aws:iam::{self.account}:root"
        direct = via_root = False
        for st in _as_list(k["policy"]["Statement"]):
            if not statement_matches(st, check.action, check.resource, check.context, principal.arn):
                if statement_matches(st, check.action, check.resource, check.context, root):
                    via_root = via_root or st["Effect"] == "Allow"
                continue
            if st["Effect"] == "Deny":
                return False, "of an explicit deny in the key policy"
            direct = True
        if direct or (via_root and effect == "allow"):
            return True, "key policy"
        return False, f"no resource-based policy allows the {check.action} action"

    def describe(self, req: Request, checks: list[Check]) -> dict[str, Any]:
        """Who made a request and what it touched (its `checks`), for the request log."""
        p = self.principals.get(req.access_key)
        return {"principal": p.name if p else req.access_key, "cluster": p.cluster if p else "",
                "resources": sorted({c.resource for c in checks})}

    def authorize(self, req: Request, checks: list[Check], caller: str) -> dict[str, Any] | None:
        """None when every one of the request's `checks` passes; else the denial (recorded)
        to answer with."""
        principal = self.principals.get(req.access_key)
        if principal is None:
            return self._deny(req, caller, None, None, "InvalidClientTokenId")
        for check in checks:
            ok, why = self.decide(principal, check)
            if not ok:
                return self._deny(req, caller, principal, check, why)
            if principal.name != "admin":
                with self.lock:
                    k = (principal.name, check.action)
                    self.allowed[k] = self.allowed.get(k, 0) + 1
        return None

    def _deny(self, req: Request, caller: str, principal: Principal | None, check: Check | None,
              why: str) -> dict[str, Any]:
        if principal is None:
            msg = "The security token included in the request is invalid."
        elif check.kms_key is not None:
            msg = (f"User: {principal.caller_arn} is not authorized to perform: {check.action} on resource: "
                   f"{check.resource} because {why}")
        else:
            kind = "an explicit deny in an identity-based policy" if why == "explicit-deny" else \
                f"no identity-based policy allows the {check.action} action"
            msg = f"User: {principal.caller_arn} is not authorized to perform: {check.action} on resource: {check.resource} because {kind}"
        d = {"t": time.time(), "caller": caller, "principal": principal.name if principal else req.access_key,
             "action": check.action if check else f"{req.service}:{req.operation}",
             "resource": check.resource if check else "", "service": req.service, "operation": req.operation,
             "message": msg}
        with self.lock:
            self.denials.append(d)
        return d

    def allows(self, access_key: str, action: str, resource: str, caller: str) -> tuple[bool, str]:
        """A call AWS makes with a principal's credentials on its behalf (Lambda's SQS poller uses
        the execution role): decided, counted and, when refused, recorded as a denial."""
        principal = self.principals.get(access_key)
        check = Check(action, resource)
        service, _, op = action.partition(":")
        req = Request(service=service, operation=op, params={}, access_key=access_key)
        if principal is None:
            self._deny(req, caller, None, None, "InvalidClientTokenId")
            return False, "no such principal"
        ok, why = self.decide(principal, check)
        if not ok:
            self._deny(req, caller, principal, check, why)
            return False, why
        with self.lock:
            k = (principal.name, action)
            self.allowed[k] = self.allowed.get(k, 0) + 1
        return True, why

    def report(self) -> dict[str, Any]:
        with self.lock:
            used: dict[str, dict[str, int]] = {}
            for (who, action), n in self.allowed.items():
                used.setdefault(who, {})[action] = n
            return {"granted": self.granted, "used": used, "denials": list(self.denials)}


# ---------------------------------------------------------------------------- AWS's answers
def denial_response(req: Request, denial: dict[str, Any]) -> tuple[int, str, bytes]:
    """(status, content type, body) as each service answers an authorization failure."""
    msg = denial["message"]
    rid = str(uuid.uuid4())
    if req.service in ("ssm", "kms", "ecs", "events", "logs"):
        code = "UnrecognizedClientException" if "security token" in msg else "AccessDeniedException"
        return 400, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": msg}).encode()
    esc = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if req.service == "ec2":
        code = "AuthFailure" if "security token" in msg else "UnauthorizedOperation"
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{esc}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return 403, "text/xml", body.encode()
    ns = {"autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
          "route53": "https://route53.amazonaws.com/doc/2013-04-01/"}.get(req.service, "")
    code = "InvalidClientTokenId" if "security token" in msg else "AccessDenied"
    body = (f"<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{esc}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
    return 403, "text/xml", body.encode()
