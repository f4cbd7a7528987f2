# On a manager: drains NODE_ID and waits up to WAIT_SECONDS for its tasks to stop there
# and for every service to be back at its replica count elsewhere.
# In: NODE_ID, WAIT_SECONDS. Prints remaining=N pending=N.
require_manager
if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  echo "remaining=0"; echo "pending=0"; echo "gone=true"; exit 0
fi
drain_node "$NODE_ID" "$WAIT_SECONDS"
