"""`make lint`: no import circle between swarm-core's modules (production code).

Each top-level module's `crate::<module>` references (tests and comments left out) make a
graph; a module that reaches itself is a circle, printed with the edges that close it.
Exit 1 when there is one.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "crates" / "swarm-core" / "src"
# Test-only modules, and the crate root's re-exports under their modules' names.
SKIP = {"lib", "memory", "fuzzing"}
ALIASES = {"Config": "config", "Lifecycle": "workflow", "redact": "lib"}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.rs"):
        top = path.relative_to(SRC).parts[0].removesuffix(".rs")
        if top in SKIP:
            continue
        text = path.read_text().split("#[cfg(test)]")[0]
        code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
        deps = {ALIASES.get(d, d) for d in re.findall(r"crate::(\w+)", code)}
        edges.setdefault(top, set()).update(d for d in deps if d not in (top, "lib") and d not in SKIP)
    return edges


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for d in edges.get(stack.pop(), ()):
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen


def main() -> int:
    edges = graph()
    circles = sorted(m for m in edges if m in reaches(edges, m))
    for m in circles:
        back = sorted(d for d in edges[m] if m in reaches(edges, d) or d == m)
        print(f"import circle: {m} -> {', '.join(back)} -> ... -> {m}")
    if not circles:
        print(f"module-cycles: {len(edges)} modules of swarm-core, no import circle")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
