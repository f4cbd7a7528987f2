# On a manager: one page of nodes (OFFSET, LIMIT), one line each:
# ID STATE ADDR ROLE AVAILABILITY LEADER INSTANCE UPDATED HOSTNAME LABELS (a JSON array: zone,
# instance type, capacity type, group cut to 64 characters). First line: total=N.
# In: OFFSET, LIMIT. Pages keep the output under SSM's 24,000 characters.
# A node removed between the list and the inspect (another retirement's `docker node rm`) fails
# the whole inspect with "No such node": list again (seen when three workers left at once; the
# failed listing read as "no live manager").
list_page() {
  local err ids page out
  err=$(mktemp)
  for _ in 1 2 3 4 5; do
    ids=$(docker node ls -q | sort)
    page=$(printf '%s\n' "$ids" | tail -n "+$((OFFSET + 1))" | head -n "$LIMIT")
    if [ -z "$page" ]; then
      echo "total=$(printf '%s\n' "$ids" | grep -c . || true)"
      rm -f "$err"
      return 0
    fi
    # shellcheck disable=SC2086
    if out=$(docker node inspect $page --format \
      '{{.ID}} {{.Status.State}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{else}}{{.Status.Addr}}{{end}} {{.Spec.Role}} {{.Spec.Availability}} {{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}false{{end}} {{with index .Spec.Labels "swarm.instance-id"}}{{.}}{{else}}-{{end}} {{.UpdatedAt.Unix}} {{.Description.Hostname}} [{{json (index .Spec.Labels "swarm.zone")}},{{json (index .Spec.Labels "swarm.instance-type")}},{{json (index .Spec.Labels "swarm.capacity-type")}},{{json (truncate (index .Spec.Labels "swarm.group") 64)}}]' \
      2>"$err"); then
      echo "total=$(printf '%s\n' "$ids" | grep -c . || true)"
      printf '%s\n' "$out"
      rm -f "$err"
      return 0
    fi
    grep -q "No such node" "$err" || break
  done
  cat "$err" >&2
  rm -f "$err"
  return 1
}
list_page
