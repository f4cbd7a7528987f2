# Reports whether this instance is in a swarm and can act as its manager, and whether it is
# being retired itself (fenced: a Spot warning, a scheduled change, its terminate hook).
docker info --format 'swarm={{.Swarm.LocalNodeState}}{{"\n"}}control={{.Swarm.ControlAvailable}}{{"\n"}}nodeid={{.Swarm.NodeID}}' 2>/dev/null \
  || echo "swarm=error"
if [ -e "$(retired_marker)" ]; then echo "retiring=true"; fi
