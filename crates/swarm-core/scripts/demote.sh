# On another manager: demotes NODE_ID (swarm refuses if that would lose quorum).
# In: NODE_ID.
require_manager
if [ "$(docker node inspect "$NODE_ID" --format '{{.Spec.Role}}' 2>/dev/null || echo gone)" = manager ]; then
  docker node demote "$NODE_ID" 2>&1 >/dev/null | redact >&2
fi
echo "demoted=true"
