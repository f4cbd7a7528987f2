# On a manager: removes NODE_ID. Its instance is going away, so a worker that could not
# leave cleanly (unreachable) is removed by force; a node that is still a manager never is.
# In: NODE_ID. Exit 5: still a manager.
require_manager
role=$(docker node inspect "$NODE_ID" --format '{{.Spec.Role}}' 2>/dev/null || echo gone)
case "$role" in
  gone) echo "removed=already" ;;
  manager) echo "node $NODE_ID is still a manager; not removing" >&2; exit 5 ;;
  *) docker node rm --force "$NODE_ID" >/dev/null; echo "removed=true" ;;
esac
