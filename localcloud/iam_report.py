"""`make iam-report`: for each role of infra/template.yaml, every action it grants and how
often the end-to-end scenarios used it (from each scenario's iam-report.json, written by the
local cloud at shutdown). A grant no scenario used must carry its reason in the template
(a `# unused here:` comment on the line that grants it, or `# Lambda's own:` for what Lambda
itself does with the execution role: logs, traces, the on-failure destination); the report names the ones that do
not, and exits 1 if there are any."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

from .iam import TEMPLATE, Authority

ROOT = Path(__file__).resolve().parent.parent


def main(artifacts: Path = ROOT / "tests" / "artifacts") -> int:
    reports = sorted(artifacts.glob("*/iam-report.json"))
    if not reports:
        print(f"no iam-report.json under {artifacts}: run `make e2e` first", file=sys.stderr)
        return 2
    # What the template grants now (rendered as the scenarios render it); what was used, from the runs.
    auth = Authority("us-east-1", "123456789012")
    auth.load(TEMPLATE, {"ClusterName": "demo", "HostedZoneId": "ZREPORT"}, {})
    granted = {role: set(actions) for role, actions in auth.granted.items()}
    used: dict[str, dict[str, int]] = {}
    denials = []
    for p in reports:
        r = json.loads(p.read_text())
        for role, counts in r["used"].items():
            for a, n in counts.items():
                used.setdefault(role, {})[a] = used.setdefault(role, {}).get(a, 0) + n
        denials += [(p.parent.name, d) for d in r["denials"]]
    # Actions an attached AWS managed policy grants: the SSM agent's own calls, which the
    # local cloud does not make; the policy is AWS's, so they are reported, not removed.
    managed = {}
    for f in (ROOT / "localcloud" / "policies").glob("*.json"):
        m = json.loads(f.read_text())
        if "Arn" in m:
            for st in m["Document"]["Statement"]:
                for a in st["Action"] if isinstance(st["Action"], list) else [st["Action"]]:
                    managed[a] = f"{m['Arn'].split('/')[-1]} {m['VersionId']}: the agent's own call, not simulated"
    template = (ROOT / "infra" / "template.yaml").read_text()
    justified = {a for line in template.splitlines() if "# unused here:" in line or "# Lambda's own:" in line
                 for a in re.findall(r"[a-z0-9-]+:[A-Za-z*]+", line.split("#")[0])}
    print(f"# IAM: granted and used, over {len(reports)} scenarios\n")
    print("| role | action | calls | note |\n|---|---|---:|---|")
    missing = []
    for role in sorted(granted):
        for action in sorted(granted[role]):
            n = sum(c for a, c in used.get(role, {}).items() if fnmatch.fnmatchcase(a.lower(), action.lower()))
            note = "" if n else managed.get(action) or ("reason in the template" if action in justified else "UNUSED")
            if not n and action not in justified and action not in managed:
                missing.append(f"{role} {action}")
            print(f"| {role} | {action} | {n} | {note} |")
    print(f"\ndenials recorded: {len(denials)} (expected ones come from scenarios marked expect_denials)")
    for scenario, d in denials:
        print(f"- {scenario}: {d['principal']} {d['action']} on {d['resource']}")
    if missing:
        print(f"\nunused and unexplained: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "artifacts"))
