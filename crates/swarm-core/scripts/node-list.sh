# On a manager: one page of nodes (OFFSET, LIMIT), one line each:
# ID STATE ADDR ROLE AVAILABILITY LEADER INSTANCE UPDATED HOSTNAME LABELS (a JSON array: zone,
# instance type, capacity type, group cut to 64 characters). First line: total=N.
# In: OFFSET, LIMIT. Pages keep the output under SSM's 24,000 characters.
ids=$(docker node ls -q | sort)
echo "total=$(printf '%s\n' "$ids" | grep -c . || true)"
page=$(printf '%s\n' "$ids" | tail -n "+$((OFFSET + 1))" | head -n "$LIMIT")
[ -n "$page" ] || exit 0
# shellcheck disable=SC2086
docker node inspect $page --format \
  '{{.ID}} {{.Status.State}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{else}}{{.Status.Addr}}{{end}} {{.Spec.Role}} {{.Spec.Availability}} {{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}false{{end}} {{with index .Spec.Labels "swarm.instance-id"}}{{.}}{{else}}-{{end}} {{.UpdatedAt.Unix}} {{.Description.Hostname}} [{{json (index .Spec.Labels "swarm.zone")}},{{json (index .Spec.Labels "swarm.instance-type")}},{{json (index .Spec.Labels "swarm.capacity-type")}},{{json (truncate (index .Spec.Labels "swarm.group") 64)}}]'
