"""`make iam-report`: for each role of infra/template.yaml, every action it grants and how
often the end-to-end scenarios used it (from each scenario's iam-report.json, written by the
local cloud at shutdown). A grant no scenario used must carry its reason in the template
(a `# unused here:` comment on the line that grants it); the report names the ones that do
not, and exits 1 if there are any."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(artifacts: Path = ROOT / "tests" / "artifacts") -> int:
    reports = sorted(artifacts.glob("*/iam-report.json"))
    if not reports:
        print(f"no iam-report.json under {artifacts}: run `make e2e` first", file=sys.stderr)
        return 2
    granted: dict[str, set[str]] = {}
    used: dict[str, dict[str, int]] = {}
    denials = []
    for p in reports:
        r = json.loads(p.read_text())
        for role, actions in r["granted"].items():
            granted.setdefault(role, set()).update(actions)
        for role, counts in r["used"].items():
            for a, n in counts.items():
                used.setdefault(role, {})[a] = used.setdefault(role, {}).get(a, 0) + n
        denials += [(p.parent.name, d) for d in r["denials"]]
    template = (ROOT / "infra" / "template.yaml").read_text()
    justified = {a for line in template.splitlines() if "# unused here:" in line
                 for a in re.findall(r"[a-z0-9-]+:[A-Za-z*]+", line.split("#")[0])}
    print(f"# IAM: granted and used, over {len(reports)} scenarios\n")
    print("| role | action | calls | note |\n|---|---|---:|---|")
    missing = []
    for role in sorted(granted):
        for action in sorted(granted[role]):
            n = sum(c for a, c in used.get(role, {}).items() if fnmatch.fnmatchcase(a.lower(), action.lower()))
            note = "" if n else ("justified in the template" if action in justified else "UNUSED")
            if not n and action not in justified:
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
