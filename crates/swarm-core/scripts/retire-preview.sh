# On a manager, read-only: what draining NODE_ID would do to its services (`plan --retire`, a
# dry-run retirement). Prints one JSON object per line after its kind:
#   node {...}     every other node: id, hostname, role, availability, state, platform, labels
#   service {...}  each service with a task on NODE_ID: name, replicas (null: global), the
#                  placement's constraints and replicas-max-per-node
#   budget KIND|…  budget_verdicts' answer for them (ok, short, stuck, invalid)
# In: NODE_ID.
require_manager
# shellcheck disable=SC2046
docker node inspect $(docker node ls -q) --format 'node {"id":{{json .ID}},"hostname":{{json .Description.Hostname}},"role":{{json .Spec.Role}},"availability":{{json .Spec.Availability}},"state":{{json .Status.State}},"os":{{json .Description.Platform.OS}},"arch":{{json .Description.Platform.Architecture}},"labels":{{json .Spec.Labels}},"engine":{{json .Description.Engine.Labels}}}' \
  | grep -v "\"id\":\"$NODE_ID\""
mine=$(services_on "$NODE_ID")
[ -n "$mine" ] || exit 0
# One inspect for all of them (a service removed meanwhile is left out).
# shellcheck disable=SC2086
docker service inspect ${mine//,/ } --format 'service {"name":{{json .Spec.Name}},"replicas":{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}null{{end}},{{with .Spec.TaskTemplate.Placement}}"constraints":{{json .Constraints}},"max_per_node":{{.MaxReplicas}}{{else}}"constraints":null,"max_per_node":0{{end}}}' 2>/dev/null || true
labelled=$(budget_labels "$mine")
if [ -n "$labelled" ]; then
  budget_counts "$NODE_ID" "$labelled" | budget_verdicts | sed 's/^/budget /'
fi
