# The instance named FENCE is leaving: it waits (a bounded time) for a join in flight here
# to end, then refuses every later one, before it reports its state below.
# In: FENCE (an instance id, or -).
if [ "${AWS_SSM_INSTANCE_ID:-}" = "${FENCE:--}" ]; then
  open_join_lock
  flock -w 20 9 || echo "a join still runs here after 20s" >&2
  : > "$(retired_marker)"
fi
