"""IAM and STS for the template's principals, which the local cloud keeps itself (iam.Authority),
not moto:
- STS GetCallerIdentity answers who signed the request: "No permissions are required to perform
  this operation. If an administrator attaches a policy to your identity that explicitly denies
  access to the sts:GetCallerIdentity action, you can still perform this operation" (STS API
  reference), so it is never authorized (iam.Authority.checks gives it none). An assumed role is
  `arn:aws:sts::<account>:assumed-role/<role>/<session>`, its UserId `<role id>:<session>`.
- IAM SimulatePrincipalPolicy with the evaluation every request gets (iam.evaluate): "Each
  operation is evaluated for each resource" of ResourceArns (default `*`; "You can simulate
  resources that don't exist in your account"), ContextEntries give the condition keys, and a
  key a matching statement's condition needs but the request did not give is listed in
  MissingContextValues. EvalDecision: allowed | explicitDeny | implicitDeny; MatchedStatements
  name the deciding policy (SourcePolicyId) — "the deny statement is the only entry included".
  A PolicySourceArn no principal has: NoSuchEntity.
- PutRolePolicy / GetRolePolicy on a template role: an inline policy replaced (or added) takes
  effect for that role's next request; GetRolePolicy answers the document URL-encoded ("The
  policy document returned in this structure is URL-encoded compliant with RFC 3986"). A role
  the local cloud does not keep is moto's."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult, EmptyResult
from moto.iam.exceptions import InvalidInput, NoSuchEntity
from moto.iam.responses import IamResponse
from moto.sts.responses import TokenResponse

from ..iam import Principal, _as_list, evaluate, statement_matches

if TYPE_CHECKING:
    from ..cloud import Cloud


def _context(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """ContextEntries as the evaluation's context: a list type gives the list, else one value."""
    out: dict[str, Any] = {}
    for e in entries:
        values = [str(v) for v in _as_list(e.get("ContextKeyValues") or [])]
        kind = str(e.get("ContextKeyType") or "string")
        out[str(e["ContextKeyName"])] = values if kind.endswith("List") else (values[0] if values else "")
    return out


def _missing(principal: Principal, action: str, resource: str, context: dict[str, Any]) -> list[str]:
    """The condition keys of the statements that match the action and resource but not the
    request's context."""
    given = {k.lower() for k in context}
    keys: set[str] = set()
    for _, doc in principal.policies:
        for st in _as_list(doc.get("Statement", [])):
            if statement_matches({k: v for k, v in st.items() if k != "Condition"}, action, resource, {}):
                keys |= {k for cond in (st.get("Condition") or {}).values() for k in cond if k.lower() not in given}
    return sorted(keys)


def simulate(principal: Principal, actions: list[str], resources: list[str],
             context: dict[str, Any]) -> list[dict[str, Any]]:
    """SimulatePrincipalPolicy's EvaluationResults, one per action and resource."""
    decision = {"allow": "allowed", "explicit-deny": "explicitDeny", "implicit-deny": "implicitDeny"}
    out = []
    for action in actions:
        for resource in resources:
            effect, where = evaluate(principal.policies, action, resource, context)
            matched = [{"SourcePolicyId": where.split("/")[0], "SourcePolicyType": "IAM Policy"}] if where else []
            out.append({"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision[effect],
                        "MatchedStatements": matched,
                        "MissingContextValues": _missing(principal, action, resource, context)})
    return out


def install(cloud: Cloud) -> None:
    """Patches moto's STS and IAM to answer for the principals of `cloud`'s deployments."""
    get_caller_identity = TokenResponse.get_caller_identity
    put_role_policy, get_role_policy = IamResponse.put_role_policy, IamResponse.get_role_policy

    def _get_caller_identity(self: TokenResponse) -> ActionResult:
        p = cloud.iam.principals.get(self.get_access_key())
        if p is None:
            return get_caller_identity(self)
        account = p.arn.split(":")[4]
        user_id = account if p.name == "admin" else f"AROA{hashlib.sha1(p.arn.encode()).hexdigest()[:17].upper()}:{p.session}"
        return ActionResult({"UserId": user_id, "Account": account, "Arn": p.caller_arn})

    def _roles(name: str) -> list[Principal]:
        """The principals of the role named `name`; two deployments' of one name are ambiguous."""
        found = [p for p in cloud.iam.principals.values() if p.name == name]
        if len({p.cluster for p in found}) > 1:
            raise InvalidInput(f"local cloud: role {name} is in more than one deployment")
        return found

    def _simulate_principal_policy(self: IamResponse) -> ActionResult:
        source = self._get_param("PolicySourceArn")
        actions = self._get_param("ActionNames") or []
        if not actions:
            raise InvalidInput("ActionNames must contain at least one action.")
        resources = self._get_param("ResourceArns") or ["*"]
        entries = self._get_param("ContextEntries") or []
        caller = cloud.iam.principals.get(self.get_access_key())
        # Simulating yourself is the usual case: your own principal (two deployments' roles share
        # a name here); else the role of that ARN.
        principal = caller if caller is not None and caller.arn == source else next(
            (p for p in cloud.iam.principals.values() if p.arn == source), None)
        if principal is None or principal.name == "admin":
            raise NoSuchEntity(f"The entity {source} cannot be found.")
        results = simulate(principal, actions, resources, _context(entries))
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    def _put_role_policy(self: IamResponse) -> ActionResult:
        roles = _roles(self._get_param("RoleName"))
        if not roles:
            return put_role_policy(self)
        name, doc = self._get_param("PolicyName"), json.loads(self._get_param("PolicyDocument"))
        for p in roles:
            p.policies = [(n, d) for n, d in p.policies if n != name] + [(name, doc)]
        cloud.record("role-policy-put", role=roles[0].name, policy=name)
        return EmptyResult()

    def _get_role_policy(self: IamResponse) -> ActionResult:
        role, name = self._get_param("RoleName"), self._get_param("PolicyName")
        roles = _roles(role)
        if not roles:
            return get_role_policy(self)
        doc = next((d for n, d in roles[0].policies if n == name), None)
        if doc is None:
            raise NoSuchEntity(f"The role policy with name {name} cannot be found.")
        # moto's IamResponse URL-encodes GetRolePolicyResponse.PolicyDocument on the way out.
        return ActionResult({"RoleName": role, "PolicyName": name, "PolicyDocument": json.dumps(doc)})

    TokenResponse.get_caller_identity = _get_caller_identity  # type: ignore[method-assign]
    IamResponse.simulate_principal_policy = _simulate_principal_policy  # type: ignore[attr-defined]
    IamResponse.put_role_policy = _put_role_policy  # type: ignore[method-assign]
    IamResponse.get_role_policy = _get_role_policy  # type: ignore[method-assign]
