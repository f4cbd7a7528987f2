# On a manager: drains NODE_ID and waits up to WAIT_SECONDS for its tasks to stop there
# and for the services it ran a task of to be back at their replica count elsewhere.
# In: NODE_ID, WAIT_SECONDS, STOP_WHEN_BLOCKED (true: return once every service still short is
# blocked). Prints remaining=N pending=N waiting_for=S,… [blocked=S|reason;…] (gone=true: no such node).
# Exit 8: the swarm could not answer within WAIT_SECONDS (no leader).
require_manager
deadline=$((SECONDS + WAIT_SECONDS))
state=$(node_field "$NODE_ID" '{{.Spec.Availability}}')
while [ "$state" = unknown ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.5; state=$(node_field "$NODE_ID" '{{.Spec.Availability}}')
done
case "$state" in
  gone) echo "remaining=0"; echo "pending=0"; echo "gone=true"; exit 0 ;;
  unknown) echo "node $NODE_ID cannot be inspected: the swarm has no leader" >&2; exit 8 ;;
esac
drain_node "$NODE_ID" $((deadline - SECONDS)) "${STOP_WHEN_BLOCKED:-false}"
