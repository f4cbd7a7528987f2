#!/usr/bin/env bash
# make e2e-repeat N=5 K='<pytest -k expression>': runs the selected end-to-end scenarios N
# times (every scenario on a fresh cloud, as always; E2E_WORKERS clouds side by side) and prints
# each scenario's pass count.
# Exit 1 if any scenario failed in any run: a flake is a bug to root-cause, not to retry.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
N=${N:-5}
K=${K:-}
out=${E2E_REPEAT_DIR:-$(mktemp -d /tmp/e2e-repeat-XXXX)}
mkdir -p "$out"
for i in $(seq 1 "$N"); do
  start=$SECONDS
  # As make e2e: scenarios marked `alone` after the others, with nothing beside them.
  # shellcheck disable=SC2086 # the workers option is one word or none
  "${PYTHON:-python3}" -m pytest tests/e2e -q -p no:cacheprovider ${K:+-k "$K"} -m 'not alone' \
    ${E2E_WORKERS:+-n $E2E_WORKERS --dist worksteal} --junitxml="$out/run$i.xml" >"$out/run$i.log" 2>&1
  rc=$?
  "${PYTHON:-python3}" -m pytest tests/e2e -q -p no:cacheprovider ${K:+-k "$K"} -m alone \
    --junitxml="$out/run$i-alone.xml" >>"$out/run$i.log" 2>&1
  echo "run $i of $N: pytest exit $rc, then $? alone (5: none selected), $((SECONDS - start)) s (log: $out/run$i.log)"
done
"${PYTHON:-python3}" - "$out" "$N" <<'PY'
import sys, collections, xml.etree.ElementTree as ET
from pathlib import Path
out, n = Path(sys.argv[1]), int(sys.argv[2])
passed, seen = collections.Counter(), collections.Counter()
for f in sorted(out.glob("run*.xml")):
    for case in ET.parse(f).iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        seen[name] += 1
        if not any(c.tag in ("failure", "error", "skipped") for c in case):
            passed[name] += 1
print(f"\n{'scenario':<80} passed")
for name in sorted(seen):
    print(f"{name:<80} {passed[name]}/{seen[name]}")
flaky = [k for k in seen if passed[k] < seen[k]]
print(f"\n{len(seen)} scenarios x {n} runs: {sum(passed.values())} passed, {sum(seen.values()) - sum(passed.values())} failed")
sys.exit(1 if flaky else 0)
PY
