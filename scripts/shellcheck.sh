#!/usr/bin/env bash
# Runs shellcheck on each instance script exactly as the functions send it: the prelude followed by
# the script (crates/swarm-core/src/scripts.rs composes them the same way), checked as bash,
# the shell its #! line asks the agent for. Then the project's own scripts, as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
shellcheck --severity=style scripts/*.sh .ci/run || status=1
cd crates/swarm-core/scripts
for s in *.sh; do
  [ "$s" = prelude.sh ] && continue
  if ! cat prelude.sh "$s" | shellcheck --shell=bash --severity=style - >/tmp/shellcheck.$$ 2>&1; then
    echo "== $s (after the prelude)"; sed "s/^In - line/In prelude.sh+$s line/" /tmp/shellcheck.$$; status=1
  fi
done
rm -f /tmp/shellcheck.$$
scripts=(./*.sh)
[ "$status" = 0 ] && echo "shellcheck: ${#scripts[@]} instance scripts and the project's scripts clean"
exit "$status"
