# On a manager: removes NODE_ID once it is down (forced after WAIT_SECONDS: its instance is going).
# In: NODE_ID, WAIT_SECONDS.
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  st=$(docker node inspect "$NODE_ID" --format '{{.Status.State}} {{.Spec.Role}}' 2>/dev/null || echo gone)
  case "$st" in
    gone) echo "removed=already"; exit 0 ;;
    "down worker"|"unknown worker") docker node rm "$NODE_ID" >/dev/null; echo "removed=true"; exit 0 ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    case "$st" in
      *manager) echo "node $NODE_ID is still a manager; not removing" >&2; exit 5 ;;
    esac
    docker node rm --force "$NODE_ID" >/dev/null
    echo "removed=forced"
    exit 0
  fi
  sleep 0.5
done
