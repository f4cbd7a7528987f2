#!/usr/bin/env bash
# Replays one event fixture through `cargo lambda invoke` against `cargo lambda watch`.
# Without AWS_ENDPOINT_URL, AWS is a throwaway moto server on loopback (an empty account):
# the real function runs and finds nothing to act on. Point AWS_ENDPOINT_URL (and
# HOSTED_ZONE_ID) at a running local cloud to act on its swarm. The build is the one
# Cargo.toml's [workspace.metadata.lambda.watch] asks for: the SDK crates `make build` compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENT=${1:?usage: scripts/replay.sh events/FILE.json}
# The function that subscribes to the fixture's event source.
case "$(basename "$EVENT")" in
  ecs-*) default=ecs-state-change ;;
  ec2-*) default=instance-notice ;;
  health-*) default=scheduled-change ;;
  scheduled-*|reconcile-*) default=reconcile ;;
  *) default=lifecycle-hook ;;
esac
FUNCTION=${FUNCTION:-$default}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 300
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
}
groups=()
cleanup() { for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  mp=$(free_port)
  setsid moto_server -H 127.0.0.1 -p "$mp" >/dev/null 2>&1 &
  groups+=($!)
  wait_port "$mp"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$mp"
fi
ip=$(free_port)
env_vars="CLUSTER_NAME=${CLUSTER_NAME:-demo},HOSTED_ZONE_ID=${HOSTED_ZONE_ID:-ZREPLAY},DRY_RUN=${DRY_RUN:-false},AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL,AWS_REGION=us-east-1"
env_vars+=",AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AGENT_WAIT_SECONDS=${AGENT_WAIT_SECONDS:-10},AWS_MAX_ATTEMPTS=1"
setsid cargo lambda watch -p "$FUNCTION" --invoke-port "$ip" --env-var "$env_vars" >"${TMPDIR:-/tmp}/replay-watch.log" 2>&1 &
groups+=($!)
wait_port "$ip"
cargo lambda invoke "$FUNCTION" --invoke-port "$ip" --data-file "$EVENT"
echo
