#!/usr/bin/env bash
# shellcheck on each instance script exactly as the functions send it: the prelude followed by
# the script (crates/swarm-core/src/scripts.rs composes them the same way), checked as bash,
# the shell its #! line asks the agent for.
set -euo pipefail
cd "$(dirname "$0")/../crates/swarm-core/scripts"
status=0
for s in *.sh; do
  [ "$s" = prelude.sh ] && continue
  if ! cat prelude.sh "$s" | shellcheck --shell=bash --severity=style - >/tmp/shellcheck.$$ 2>&1; then
    echo "== $s (after the prelude)"; sed "s/^In - line/In prelude.sh+$s line/" /tmp/shellcheck.$$; status=1
  fi
done
rm -f /tmp/shellcheck.$$
[ "$status" = 0 ] && echo "shellcheck: $(ls ./*.sh | wc -l) scripts clean"
exit "$status"
