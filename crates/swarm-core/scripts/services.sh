# On a manager: the services labelled swarm-lifecycle.dns-name, for their names in Route 53
# (plan/service_dns.rs). Prints per service, tab-separated:
#   service NAME LABEL MODES   (MODES: each published port's mode, ingress or host, space-separated)
# and, for a service with a host-mode port, per task running on a node:
#   task NAME NODE_ID
require_manager
# One inspect for all of them (a docker call per service made the command, and its polls,
# grow with the number of services).
ids=$(docker service ls -q --filter label=swarm-lifecycle.dns-name)
[ -n "$ids" ] || exit 0
# A service removed since the listing is left out (inspect still prints the others).
# shellcheck disable=SC2086 # the ids, one argument each
{ docker service inspect $ids --format \
  'service{{"\t"}}{{.Spec.Name}}{{"\t"}}{{index .Spec.Labels "swarm-lifecycle.dns-name"}}{{"\t"}}{{range .Endpoint.Ports}}{{.PublishMode}} {{end}}' \
  2>/dev/null || true; } | while IFS= read -r line; do
  printf '%s\n' "$line"
  case " $(cut -f4 <<<"$line") " in *" host "*) ;; *) continue ;; esac
  name=$(cut -f2 <<<"$line")
  docker service ps "$name" -q --no-trunc --filter desired-state=running 2>/dev/null \
    | xargs -r docker inspect --format '{{.NodeID}} {{.Status.State}}' 2>/dev/null \
    | awk -v n="$name" '$2 == "running" { printf "task\t%s\t%s\n", n, $1 }'
done
