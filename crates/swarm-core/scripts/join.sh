# Joins this instance to the swarm through MANAGER_ADDR. The token is read here, on the
# instance, from Parameter Store; it is never printed.
# In: MANAGER_ADDR, ADVERTISE_ADDR, TOKEN_PARAMETER. Exit 3: token missing or rejected.
join_lock
state=$(swarm_state)
if [ "$state" = active ]; then
  echo "already=true"
  echo "nodeid=$(node_id)"
  exit 0
fi
if [ "$state" = pending ] || [ "$state" = error ]; then
  # A join that timed out earlier keeps retrying in the background: start clean.
  docker swarm leave --force >/dev/null 2>&1 || true
fi
read_join_token
if ! out=$(engine_join "$MANAGER_ADDR" "$ADVERTISE_ADDR" 2>&1); then
  unset token
  printf '%s\n' "$out" | redact >&2
  case "$out" in
    *"invalid join token"*|*"token"*) exit 3 ;;
  esac
  exit 1
fi
unset token
echo "already=false"
echo "nodeid=$(node_id)"
