# On a manager: is INSTANCE_ID's node Ready and labelled with it? (The cheap check before an
# action-less join: ECS sends ACTIVE whenever the agent reconnects or tasks change.) A drained
# node is set active again when REACTIVATE is true.
# In: INSTANCE_ID, REACTIVATE. Prints state=ready (with nodeid=, role=) or state=missing.
require_manager
for node in $(docker node ls -q --filter "node.label=swarm.instance-id=$INSTANCE_ID"); do
  read -r st avail role < <(docker node inspect "$node" --format '{{.Status.State}} {{.Spec.Availability}} {{.Spec.Role}}')
  [ "$st" = ready ] || continue
  if [ "$REACTIVATE" = true ] && [ "$avail" = drain ]; then
    docker node update --availability active "$node" >/dev/null
    echo "reactivated=true"
  fi
  echo "state=ready"; echo "nodeid=$node"; echo "role=$role"
  exit 0
done
echo "state=missing"
