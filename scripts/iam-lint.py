"""Offline IAM lint of infra/template.yaml's own policies with parliament (unknown actions,
resources of the wrong type, condition keys an action does not support, malformed policies).
Every finding must be answered in infra/iam-lint-answers.yaml; a new one fails make
infra-check. The AWS managed policies the instance roles attach are AWS's, and key policies
(where Resource "*" is the key itself) are no identity policies: neither is linted here.
Run by scripts/infra-check.sh with the checkers' venv (parliament, PyYAML)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from parliament import analyze_policy_string

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from localcloud.iam import render  # noqa: E402

# A stack of every option that adds a grant (ECS and an action-event bus stay empty: their
# grants name resources the renderer cannot make up; they are the same actions).
PARAMS = {"ClusterName": "prod", "HostedZoneId": "Z0123456789ABCDEFGHIJ", "ActionEventsToAlarms": ""}


def findings(doc: dict) -> list[tuple[str, str]]:
    """(issue, action or '') of each finding parliament makes on one policy."""
    out = []
    for f in analyze_policy_string(json.dumps(doc)).findings:
        detail = f.detail if isinstance(f.detail, list) else [f.detail]
        for d in detail:
            out.append((f.issue, d.get("action", "") if isinstance(d, dict) else str(d)))
    return out


def main() -> int:
    # It must be able to fail: an action that does not exist is a finding.
    if not findings({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ec2:DescribeInstancez", "Resource": "*"}]}):
        print("iam-lint: parliament found nothing in a policy with an unknown action", file=sys.stderr)
        return 1
    answers = yaml.safe_load((ROOT / "infra" / "iam-lint-answers.yaml").read_text())
    answered = {(a["issue"], a["action"]) for a in answers}
    roles, _ = render(ROOT / "infra" / "template.yaml", PARAMS, "us-east-1", "123456789012", {})
    policies = [(f"{name}/{pname}", doc) for name, p in roles.items() for pname, doc in p.policies
                if not pname.startswith("Amazon")]  # the managed ones attached: AWS's own
    new, seen = [], set()
    for where, doc in policies:
        for f in findings(doc):
            seen.add(f)
            if f not in answered:
                new.append(f"{where}: {f[0]} {f[1]}")
    for line in new:
        print(f"iam-lint: unanswered: {line}", file=sys.stderr)
    stale = sorted(answered - seen)
    for issue, action in stale:
        print(f"iam-lint: answer for {issue} {action} no longer needed: remove it", file=sys.stderr)
    if new or stale:
        return 1
    print(f"  {len(policies)} policies, {len(seen)} kinds of finding, each answered in infra/iam-lint-answers.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
