# On a manager: waits until NODE_ID is Ready, then labels it with its instance id and its
# placement labels (a join's, and the reconcile's repair of missing or wrong ones).
# In: NODE_ID, INSTANCE_ID, WAIT_SECONDS, NODE_LABELS (key=value, tab-separated). Exit 4: not
# Ready in time.
require_manager
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  st=$(docker node inspect "$NODE_ID" --format '{{.Status.State}}' 2>/dev/null || echo missing)
  [ "$st" = ready ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node $NODE_ID is $st after ${WAIT_SECONDS}s" >&2
    exit 4
  fi
  sleep 0.5
done
docker node update --label-add "swarm.instance-id=$INSTANCE_ID" "$NODE_ID" >/dev/null
label_node "$NODE_ID"
echo "state=ready"
