"""`make lint`: each binary's AWS actions against its role in infra/template.yaml, statically.

What a binary can call is read from the binary itself: the linker keeps only the code its
`main` can reach (`--gc-sections`), so an SDK operation's symbols
(`aws_sdk_<service>::operation::<operation>::…`) are in a function's binary exactly when some
path of that function can send it. Debug binaries: no optimiser prunes a branch, so the set is
an upper bound of what the function can call.

Fails when
- a binary can call an action its role does not grant (the call would be AccessDenied),
- the doctor's list of the operator command's calls (OPERATOR_CALLS, which it asks IAM to
  simulate for the caller) and what that binary can call differ, and
- a role grants an action none of its binaries can call, unless the grant says why
  (`# Lambda's own:` on its line: what Lambda does with the execution role).
It must be able to fail: before checking, it takes an action the terminate function calls
out of its role and expects the check to name it.

Usage: reachable-actions.py [BIN_DIR]   (default: $CARGO_TARGET_DIR/debug)"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from localcloud.iam import TEMPLATE, Authority, _Loader  # noqa: E402

# SDK crates whose operations are aws-config's credential chain (the operator's profile: SSO,
# an assumed role), not calls the role itself must grant.
CREDENTIAL_CHAIN = {"sso", "ssooidc", "sts"}
# Crate name → IAM service prefix, where they differ.
IAM_PREFIX = {"eventbridge": "events"}
# The operator's command is run as the template's OperatorRole (docs/operate.md) ...
OPERATOR = ("swarm-lifecycle", "OperatorRole")
# ... and calls these on the operator's own grants only, which the role leaves out: action
# events when ACTION_EVENT_BUS is set, and forgetting a told refusal (docs/operate.md).
OPERATORS_OWN = {"events:PutEvents", "ssm:DeleteParameters"}


# The doctor's list of what the command calls (simulated against the caller's policies) must be
# what the binary can call: less the operator's own, and the simulation itself.
ACCESS_LIST = ROOT / "crates/swarm-core/src/plan/doctor/access.rs"
NOT_SIMULATED = OPERATORS_OWN | {"iam:SimulatePrincipalPolicy"}


def simulated() -> set[str]:
    """The actions of OPERATOR_CALLS in plan/doctor/access.rs."""
    block = ACCESS_LIST.read_text().split("pub const OPERATOR_CALLS", 1)[1].split("];", 1)[0]
    return set(re.findall(r'\(\s*"([a-z0-9-]+:[A-Za-z]+)",', block))


def simulation_problems(listed: set[str], can_call: set[str]) -> list[str]:
    return [f"swarm-lifecycle can call {a}; the doctor's OPERATOR_CALLS does not simulate it"
            for a in sorted(can_call - NOT_SIMULATED - listed)] + \
           [f"the doctor's OPERATOR_CALLS simulates {a}; swarm-lifecycle cannot call it"
            for a in sorted(listed - can_call)]


def reachable(binary: Path) -> set[str]:
    """The IAM actions of every SDK operation linked into `binary`."""
    out = subprocess.run(["nm", "--demangle", str(binary)], capture_output=True, text=True, check=True).stdout
    actions = set()
    for service, op in re.findall(r"aws_sdk_([a-z0-9]+)::operation::([a-z0-9_]+)::", out):
        if service not in CREDENTIAL_CHAIN:
            actions.add(f"{IAM_PREFIX.get(service, service)}:{''.join(w.capitalize() for w in op.split('_'))}")
    return actions


def functions() -> list[tuple[str, str]]:
    """(binary, role) of every function of the template, and the operator's command."""
    t = yaml.load(TEMPLATE.read_text(), Loader=_Loader)
    pairs = set()
    for spec in t["Resources"].values():
        if spec["Type"] != "AWS::Lambda::Function":
            continue
        p = spec["Properties"]
        binary = p["Code"]["S3Key"]["Fn::Sub"].split("}")[-1].removesuffix(".zip")
        pairs.add((binary, p["Role"]["Fn::GetAtt"][0]))
    return sorted(pairs) + [OPERATOR]


def grants(granted: list[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)


def check(pairs: list[tuple[str, str]], can_call: dict[str, set[str]], granted: dict[str, list[str]],
          lambdas_own: set[str]) -> list[str]:
    problems = []
    for binary, role in pairs:
        for action in sorted(can_call[binary]):
            if (binary, role) == OPERATOR and action in OPERATORS_OWN:
                continue
            if not grants(granted[role], action):
                problems.append(f"{binary} can call {action}; {role} does not grant it")
    for role in sorted({r for _, r in pairs}):
        calls = set().union(*(can_call[b] for b, r in pairs if r == role))
        for g in granted[role]:
            if "*" not in g and g not in lambdas_own and not any(grants([g], a) for a in calls):
                problems.append(f"{role} grants {g}; none of its binaries "
                                f"({', '.join(b for b, r in pairs if r == role)}) can call it")
    return problems


def main() -> int:
    bin_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
    pairs = functions()
    missing = [b for b, _ in pairs if not (bin_dir / b).is_file()]
    if missing:
        print(f"reachable-actions: no {', '.join(missing)} in {bin_dir}: cargo build first", file=sys.stderr)
        return 2
    auth = Authority("us-east-1", "123456789012")
    auth.load(TEMPLATE, {"ClusterName": "prod", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}, {})
    granted = {role: list(a) for role, a in auth.granted.items()}
    lambdas_own = {a for line in TEMPLATE.read_text().splitlines() if "# Lambda's own:" in line
                   for a in re.findall(r"[a-z0-9-]+:[A-Za-z*]+", line.split("#")[0])}
    can_call = {b: reachable(bin_dir / b) for b, _ in pairs}
    # It must be able to fail: the terminate function's heartbeat taken out of its role.
    taken = {**granted, "LifecycleRole": [a for a in granted["LifecycleRole"]
                                          if a != "autoscaling:RecordLifecycleActionHeartbeat"]}
    if not any("RecordLifecycleActionHeartbeat" in p for p in check(pairs, can_call, taken, lambdas_own)):
        print("reachable-actions: a role without the heartbeat its binary sends passed", file=sys.stderr)
        return 1
    problems = check(pairs, can_call, granted, lambdas_own)
    cli = can_call[OPERATOR[0]]
    if not simulation_problems(simulated() - {"ssm:SendCommand"}, cli):
        print("reachable-actions: an OPERATOR_CALLS without ssm:SendCommand passed", file=sys.stderr)
        return 1
    problems += simulation_problems(simulated(), cli)
    for p in problems:
        print(f"reachable-actions: {p}", file=sys.stderr)
    if problems:
        return 1
    for binary, role in pairs:
        own = len(can_call[binary] & OPERATORS_OWN) if (binary, role) == OPERATOR else 0
        print(f"  {binary} ({role}): {len(can_call[binary]) - own} actions, each granted"
              + (f"; {own} on the operator's own grants" if own else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
