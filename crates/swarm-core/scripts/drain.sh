# On a manager: drains NODE_ID and waits up to WAIT_SECONDS for its tasks to stop there
# and for every service to be back at its replica count elsewhere.
# In: NODE_ID, WAIT_SECONDS. Prints remaining=N pending=N.
require_manager
if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  echo "remaining=0"; echo "pending=0"; echo "gone=true"; exit 0
fi
if [ "$(docker node inspect "$NODE_ID" --format '{{.Spec.Availability}}')" != drain ]; then
  docker node update --availability drain "$NODE_ID" >/dev/null
fi
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  remaining=$(docker node ps "$NODE_ID" --format '{{.DesiredState}} {{.CurrentState}}' 2>/dev/null \
    | grep -c -E '^Running|^[A-Za-z]+ Running' || true)
  pending=$(docker service ls --format '{{.Mode}} {{.Replicas}}' 2>/dev/null \
    | awk '$1=="replicated" { split($2, r, "/"); if (r[1]+0 < r[2]+0) n++ } END { print n+0 }')
  if [ "$remaining" -eq 0 ] && [ "$pending" -eq 0 ]; then break; fi
  [ "$SECONDS" -ge "$deadline" ] && break
  sleep 0.5
done
echo "remaining=$remaining"
echo "pending=$pending"
