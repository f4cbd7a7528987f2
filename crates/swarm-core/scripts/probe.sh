# Reports whether this instance is in a swarm and can act as its manager.
docker info --format 'swarm={{.Swarm.LocalNodeState}}{{"\n"}}control={{.Swarm.ControlAvailable}}{{"\n"}}nodeid={{.Swarm.NodeID}}' 2>/dev/null \
  || echo "swarm=error"
