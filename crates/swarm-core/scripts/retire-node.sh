# Takes NODE_ID out of the swarm in one command, sent to a manager (the operator) and, while
# it is up, to the leaving instance LEAVING_INSTANCE; each runs its half (AWS_SSM_INSTANCE_ID
# is set by the SSM agent).
# In: NODE_ID, LEAVING_INSTANCE, DEMOTE (true|false), DRAIN_SECONDS (0: drained already),
#   WAIT_SECONDS, INSTANCE_LEAVES (true: the leaving instance runs its half of this command),
#   STOP_WHEN_BLOCKED (the drain returns once every service still short is blocked).
# Operator: drains first (DRAIN_SECONDS), and stops there with drained=false when the tasks
#   have not moved by then; demotes (DEMOTE), waits until the swarm has taken the node out of
#   raft, removes it. Exit 5: still a manager, not removed; exit 6: cannot act as a manager;
#   exit 8: the swarm cannot answer (no leader), not removed.
# Leaving instance: waits until no swarm task runs here (DRAIN_SECONDS) and it is demoted
#   (DEMOTE), then leaves (never --force: a manager that left undemoted would stay a raft
#   member). left=after-drain: tasks still here after DRAIN_SECONDS (the next command
#   leaves); exit 5: not demoted in time.
if [ "${AWS_SSM_INSTANCE_ID:-}" = "$LEAVING_INSTANCE" ]; then
  deadline=$((SECONDS + DRAIN_SECONDS + WAIT_SECONDS))
  if [ "$(swarm_state)" != active ]; then
    echo "left=already"; exit 0
  fi
  if [ "$DRAIN_SECONDS" -gt 0 ]; then
    drain_deadline=$((SECONDS + DRAIN_SECONDS))
    while [ -n "$(docker ps -q --filter label=com.docker.swarm.task.id)" ]; do
      if [ "$SECONDS" -ge "$drain_deadline" ]; then
        # A planned wait, not a failure: it leaves in the next command, once the drain is done.
        echo "left=after-drain"; exit 0
      fi
      sleep 0.2
    done
  fi
  if [ "$DEMOTE" = true ]; then
    while [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ]; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "still a manager: not leaving" >&2; exit 5
      fi
      sleep 0.2
    done
  fi
  if ! out=$(docker swarm leave 2>&1); then
    # The operator may have removed the node first: out of the swarm either way.
    if [ "$(swarm_state)" = active ]; then
      printf '%s\n' "$out" | redact >&2; exit 1
    fi
    echo "left=removed"; exit 0
  fi
  echo "left=true"
  exit 0
fi
require_manager
node_role() { node_field "$NODE_ID" '{{.Spec.Role}}'; }
if [ "$(node_role)" = gone ]; then
  echo "removed=already"; exit 0
fi
if [ "$DRAIN_SECONDS" -gt 0 ]; then
  drain_node "$NODE_ID" "$DRAIN_SECONDS" "${STOP_WHEN_BLOCKED:-false}"
  if [ "$remaining" != 0 ] || [ "$pending" != 0 ]; then
    echo "drained=false"; exit 0
  fi
  echo "drained=true"
fi
deadline=$((SECONDS + WAIT_SECONDS))
if [ "$DEMOTE" = true ] && [ "$(node_role)" = manager ]; then
  # The swarm refuses a demotion that would lose quorum. "update out of sequence": the node
  # changed between the CLI's read and its write (another manager's demotion reconfiguring
  # raft): read and write again.
  until out=$(docker node demote "$NODE_ID" 2>&1 >/dev/null); do
    case "$out" in *"update out of sequence"*) ;; *) printf '%s\n' "$out" | redact >&2; exit 1 ;; esac
    if [ "$SECONDS" -ge "$deadline" ]; then printf '%s\n' "$out" | redact >&2; exit 1; fi
    sleep 0.2
  done
  echo "demoted=true"
fi
# A demoted node stays a raft member until the swarm has reconfigured raft; rm refuses it
# until then.
while :; do
  case "$(node_field "$NODE_ID" '{{if .ManagerStatus}}member{{else}}out{{end}}')" in out|gone) break ;; esac
  [ "$SECONDS" -ge "$deadline" ] && break
  sleep 0.2
done
# A demoted node steps down only when it holds its new worker certificate; a node removed
# before that can never get one and stays "a manager" on its own daemon, so it cannot leave.
# When the instance runs its half, let it leave first (its node then goes down).
if [ "${INSTANCE_LEAVES:-false}" = true ]; then
  while :; do
    case "$(node_field "$NODE_ID" '{{.Status.State}}')" in ready|unknown) ;; *) break ;; esac
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.2
  done
fi
role=$(node_role)
while [ "$role" = unknown ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2; role=$(node_role)
done
case "$role" in
  gone) echo "removed=already" ;;
  manager) echo "node $NODE_ID is still a manager; not removing" >&2; exit 5 ;;
  unknown) echo "node $NODE_ID cannot be inspected (the swarm has no leader); not removing" >&2; exit 8 ;;
  *)
    # A copy of the same retirement may remove it between the check and here: gone is done.
    if out=$(docker node rm --force "$NODE_ID" 2>&1 >/dev/null); then
      echo "removed=true"
    else
      case "$(node_field "$NODE_ID" '{{.ID}}')" in
        gone) echo "removed=already" ;;
        *) printf '%s\n' "$out" | redact >&2; exit 1 ;;
      esac
    fi ;;
esac
