# On the leaving node: leaves the swarm (never --force: a manager must be demoted first).
if [ "$(swarm_state)" = active ]; then
  docker swarm leave 2>&1 >/dev/null | redact >&2
fi
echo "left=true"
