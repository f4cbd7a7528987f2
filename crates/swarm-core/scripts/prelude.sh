# Shared prelude of every script run through AWS-RunShellScript.
# Inputs arrive as exported, single-quoted variables set before this text.
set -euo pipefail
umask 077
# Join tokens must never reach command output: mask anything shaped like one.
redact() { sed -E 's/SWMTKN-[0-9A-Za-z-]+/SWMTKN-<redacted>/g'; }
swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo error; }
node_id() { docker info --format '{{.Swarm.NodeID}}'; }
# Writes both join tokens to SecureString parameters under $TOKEN_PREFIX.
# The token goes from docker to a private file to the AWS CLI: never argv, never stdout.
publish_tokens() {
  local role tmp
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' RETURN
  for role in worker manager; do
    docker swarm join-token -q "$role" | tr -d '\n' > "$tmp"
    # shellcheck disable=SC2086
    aws ssm put-parameter --name "$TOKEN_PREFIX/$role" --type SecureString --overwrite \
      ${TOKEN_KMS_KEY:+--key-id "$TOKEN_KMS_KEY"} --value "file://$tmp" > /dev/null 2> >(redact >&2)
  done
}
# One join at a time on this instance: EventBridge delivers at least once, and a second
# command that saw the first's join as "pending" would otherwise reset it and join again,
# leaving a ghost node Ready at this address until its heartbeat lapses.
join_lock() {
  exec 9> "${SWARM_LOCK_DIR:-/run/lock}/swarm-lifecycle-join-${AWS_SSM_INSTANCE_ID:-local}.lock"
  flock 9
}
# Scripts that act through a manager stop here (exit 6) when this instance cannot: its
# daemon is down or it is no longer a manager. The caller then uses another manager.
require_manager() {
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
    echo "this instance is not a reachable swarm manager" >&2
    exit 6
  fi
}
