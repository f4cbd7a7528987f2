# The instance named LIST_ON, when it is a live manager, goes on to list the first page of
# nodes: one command then both probes every instance and reads the swarm.
# In: LIST_ON, OFFSET, LIMIT. AWS_SSM_INSTANCE_ID is set by the SSM agent.
[ "${AWS_SSM_INSTANCE_ID:-}" = "$LIST_ON" ] || exit 0
[ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || exit 0
