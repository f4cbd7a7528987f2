# Initialises the swarm on the first manager (idempotent) and publishes the join tokens.
# In: ADVERTISE_ADDR, TOKEN_PREFIX, TOKEN_KMS_KEY (empty: aws/ssm), SHARED_STORAGE (empty: none).
join_lock
if [ "$(swarm_state)" != active ]; then
  require_shared_storage
  # init prints a join command with the worker token on stdout: discard it.
  if ! docker swarm init --advertise-addr "$ADVERTISE_ADDR" 2>&1 >/dev/null | redact >&2; then
    refuse_nftables
    exit 1
  fi
fi
publish_tokens
echo "nodeid=$(node_id)"
