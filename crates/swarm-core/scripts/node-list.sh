# On a manager: one line per node, ID STATE ADDR ROLE AVAILABILITY LEADER INSTANCE HOSTNAME.
# shellcheck disable=SC2046
docker node inspect $(docker node ls -q) --format \
  '{{.ID}} {{.Status.State}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{else}}{{.Status.Addr}}{{end}} {{.Spec.Role}} {{.Spec.Availability}} {{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}false{{end}} {{with index .Spec.Labels "swarm.instance-id"}}{{.}}{{else}}-{{end}} {{.Description.Hostname}}'
