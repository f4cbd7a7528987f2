# Joins JOIN_INSTANCE and confirms it Ready in one command, sent to the joining instance and
# to the cluster's other managers; each runs its half (AWS_SSM_INSTANCE_ID is set by the SSM
# agent). The token is read on the joining instance from Parameter Store, never printed.
# In: JOIN_INSTANCE, JOIN_ADDR, MANAGER_ADDRS (space-separated), TOKEN_PARAMETER, WAIT_SECONDS,
#   REACTIVATE (true: a drained node is set active again, as ECS ACTIVE after DRAINING asks),
#   NODE_LABELS (its placement labels: key=value, tab-separated), SHARED_STORAGE (empty: none).
# Joining half: exit 3 token missing or rejected, exit 1 no manager accepted the join, exit 10
#   the shared storage is not mounted.
# Manager half: control=false when not a live manager; state=waiting when no node was Ready
#   in time (the function then waits for the node the instance names).
if [ "${AWS_SSM_INSTANCE_ID:-}" = "$JOIN_INSTANCE" ]; then
  join_swarm "$MANAGER_ADDRS" "$JOIN_ADDR"
  exit 0
fi
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
  echo "control=false"; exit 0
fi
echo "control=true"
deadline=$((SECONDS + WAIT_SECONDS))
# Nodes settled at another address (Ready or Down there) are never this join's and are not
# inspected again: during a scale-out one manager confirms several joins at once, and
# inspecting the whole node list every second for each of them cost it a core.
elsewhere=""
while :; do
  # A node removed between the list and its inspect fails alone: the others still print.
  seen=$(docker node ls -q | awk -v skip="$elsewhere" 'BEGIN { split(skip, s, " "); for (i in s) k[s[i]] } !($1 in k)' \
    | xargs -r docker node inspect --format \
      '{{.CreatedAt.UnixNano}} {{.ID}} {{.Status.State}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{else}}{{.Status.Addr}}{{end}}' \
      2>/dev/null || true)
  # The newest Ready node at the joining instance's address: a stale node there is down, or,
  # for a few seconds after a join was cut short, still Ready but older.
  node=$(awk -v a="$JOIN_ADDR" '$3 == "ready" && ($4 == a || index($4, a ":") == 1)' <<<"$seen" \
    | sort -rn | awk 'NR == 1 { print $2 }')
  [ -n "$node" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    # Not a failure: a busy machine's join can take longer; the function waits on.
    echo "no Ready node at $JOIN_ADDR after ${WAIT_SECONDS}s" >&2
    echo "state=waiting"; exit 0
  fi
  elsewhere+=" $(awk -v a="$JOIN_ADDR" '($3 == "ready" || $3 == "down") && $4 != "" && $4 != a && index($4, a ":") != 1 { printf "%s ", $2 }' <<<"$seen")"
  sleep 1
done
docker node update --label-add "swarm.instance-id=$JOIN_INSTANCE" "$node" >/dev/null
label_node "$node"
if [ "${REACTIVATE:-false}" = true ] && [ "$(docker node inspect "$node" --format '{{.Spec.Availability}}')" = drain ]; then
  docker node update --availability active "$node" >/dev/null
  echo "reactivated=true"
fi
echo "nodeid=$node"
echo "state=ready"
