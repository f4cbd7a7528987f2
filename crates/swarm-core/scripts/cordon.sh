# On a manager: NODE_ID takes no new tasks and keeps the ones it runs (availability pause);
# a node that is draining already stays drained.
# In: NODE_ID. Prints availability=pause|drain|gone.
require_manager
if ! availability=$(docker node inspect "$NODE_ID" --format '{{.Spec.Availability}}' 2>/dev/null); then
  echo "availability=gone"; exit 0
fi
if [ "$availability" = active ]; then
  docker node update --availability pause "$NODE_ID" >/dev/null
  availability=pause
fi
echo "availability=$availability"
