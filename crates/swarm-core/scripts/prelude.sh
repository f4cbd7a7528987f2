#!/bin/bash
# Shared prelude of every script run through AWS-RunShellScript.
# Inputs arrive as exported, single-quoted variables set before this text.
set -euo pipefail
umask 077
# AWS CLI v1 takes no region from the instance metadata (v2 does): the agent names it.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_SSM_REGION_NAME:-}}"
# The CLI asks the instance metadata service for its role's credentials once, with a 1 s
# timeout (AWS SDKs and Tools guide: metadata_service_num_attempts, "Default value: 1"): an
# instance busy booting, or a scale-out's joins starting at once, can miss it and read as a
# missing token. Three tries of 2 s each.
export AWS_METADATA_SERVICE_NUM_ATTEMPTS="${AWS_METADATA_SERVICE_NUM_ATTEMPTS:-3}"
export AWS_METADATA_SERVICE_TIMEOUT="${AWS_METADATA_SERVICE_TIMEOUT:-2}"
# Join tokens must never reach command output: mask anything shaped like one.
redact() { sed -E 's/SWMTKN-[0-9A-Za-z-]+/SWMTKN-<redacted>/g'; }
swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo error; }
node_id() { docker info --format '{{.Swarm.NodeID}}'; }
# Writes both join tokens to SecureString parameters under $TOKEN_PREFIX.
# The token goes from docker to a private file to the AWS CLI: never argv, never stdout.
publish_tokens() {
  local role tmp
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' RETURN
  for role in worker manager; do
    docker swarm join-token -q "$role" | tr -d '\n' > "$tmp"
    # shellcheck disable=SC2086
    aws ssm put-parameter --name "$TOKEN_PREFIX/$role" --type SecureString --overwrite \
      ${TOKEN_KMS_KEY:+--key-id "$TOKEN_KMS_KEY"} --value "file://$tmp" > /dev/null 2> >(redact >&2)
  done
}
# Reads the join token from Parameter Store into $token (exit 3 when missing or not a token).
read_join_token() {
  local err
  err=$(mktemp)
  if ! token=$(aws ssm get-parameter --name "$TOKEN_PARAMETER" --with-decryption \
        --query Parameter.Value --output text 2>"$err") || [ -z "$token" ]; then
    # The CLI's own last words say which (not found, denied, no credentials); never the token.
    echo "join token parameter $TOKEN_PARAMETER is missing or unreadable: $(grep . "$err" | tail -n 1 | redact)" >&2
    rm -f "$err"
    exit 3
  fi
  rm -f "$err"
  # It goes into a JSON body below: anything but a token's characters is refused.
  if ! [[ $token =~ ^SWMTKN-[0-9A-Za-z-]+$ ]]; then
    unset token
    echo "join token parameter $TOKEN_PARAMETER does not hold a swarm join token" >&2
    exit 3
  fi
}
# Joins the swarm at $1:2377, advertising $2, with $token, through the Engine API: the CLI
# takes the token as an argument, and argv is readable by any local user. printf is a
# builtin, so the token only ever reaches a private file. On failure, prints why.
engine_join() {
  local body resp code sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
  body=$(mktemp) resp=$(mktemp)
  trap 'rm -f "$body" "$resp"' RETURN
  printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s:2377"],"JoinToken":"%s"}' \
    "$2" "$1" "$token" > "$body"
  code=$(curl -s --max-time 30 --unix-socket "${sock#unix://}" -H 'Content-Type: application/json' \
    --data-binary "@$body" -o "$resp" -w '%{http_code}' http://localhost/swarm/join) || code="curl exit $?"
  [ "$code" = 200 ] && return 0
  # The daemon answers {"message":"..."}; a timed-out join goes on in the background.
  sed -n 's/.*"message":"\(.*\)".*/\1/p' "$resp" | grep . || echo "swarm join via $1: $code"
  return 1
}
# Joins this instance through the first of the managers $1 (space-separated addresses) that
# accepts it, advertising $2, and prints already=, via= and nodeid=. The token is read here
# from Parameter Store and never printed. Exit 3: token missing or rejected; 1: no manager
# accepted the join.
# Docker 29's nftables firewall backend "cannot be enabled when the Docker daemon is running in
# Swarm mode" (Docker docs, "Docker with nftables"): after a failed join or init, say so (exit
# 9) rather than leave the daemon's refusal to be read. The daemon's /info names its backend.
refuse_nftables() {
  local sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
  if curl -s --max-time 10 --unix-socket "${sock#unix://}" http://localhost/info 2>/dev/null \
      | grep -q '"FirewallBackend":{[^}]*"Driver":"nftables"'; then
    echo "the Docker daemon runs the nftables firewall backend, which cannot run in Swarm mode: set \"firewall-backend\": \"iptables\" in /etc/docker/daemon.json and restart it" >&2
    exit 9
  fi
}

# A cluster with shared storage (SHARED_STORAGE, e.g. /cluster) joins a node only once the file
# system is mounted there: its services would otherwise write to the root volume and lose it.
# The mount happens at boot (user data): wait for it a little, then say so (exit 10).
require_shared_storage() {
  [ -n "${SHARED_STORAGE:-}" ] || return 0
  local waited=0
  until mountpoint -q "$SHARED_STORAGE"; do
    if [ "$waited" -ge "${SHARED_STORAGE_WAIT:-30}" ]; then
      echo "shared storage $SHARED_STORAGE is not mounted (its mount at boot failed or never ran)" >&2
      exit 10
    fi
    sleep 1; waited=$((waited + 1))
  done
}

join_swarm() {
  local addr joined="" out="" state
  join_lock
  if [ "$(swarm_state)" = active ]; then
    echo "already=true"; echo "nodeid=$(node_id)"; return 0
  fi
  require_shared_storage
  read_join_token
  for addr in $1; do
    state=$(swarm_state)
    if [ "$state" = pending ] || [ "$state" = error ]; then
      # A join that timed out keeps retrying in the background: start clean.
      docker swarm leave --force >/dev/null 2>&1 || true
    fi
    if out=$(engine_join "$addr" "$2" 2>&1); then
      joined=$addr; break
    fi
    case "$out" in *"invalid join token"*) break ;; esac
  done
  unset token
  if [ -z "$joined" ]; then
    printf '%s\n' "$out" | redact >&2
    refuse_nftables
    case "$out" in *"token"*) exit 3 ;; esac
    exit 1
  fi
  echo "already=false"; echo "via=$joined"; echo "nodeid=$(node_id)"
}
# One join at a time on this instance: EventBridge delivers at least once, and a second
# command that saw the first's join as "pending" would otherwise reset it and join again,
# leaving a ghost node Ready at this address until its heartbeat lapses. Once the instance
# is being retired, no join or init gets past it (exit 7).
open_join_lock() { exec 9> "${SWARM_LOCK_DIR:-/run/lock}/swarm-lifecycle-join-${AWS_SSM_INSTANCE_ID:-local}.lock"; }
join_lock() { open_join_lock; flock 9; refuse_if_retired; }
# Written (under the join lock) when this instance starts to leave: a join still in flight
# has finished by then, and any later one (a redelivered launch) is refused with exit 7, so
# no join can cross the instance's retirement and leave a ghost node behind. /run is tmpfs:
# a reboot forgets it.
retired_marker() { echo "${SWARM_LOCK_DIR:-/run/lock}/swarm-lifecycle-retired-${AWS_SSM_INSTANCE_ID:-local}"; }
refuse_if_retired() {
  if [ -e "$(retired_marker)" ]; then
    echo "this instance is being retired: not joining" >&2
    exit 7
  fi
}
# Node $1's field $2 (a Go template): "gone" when the node does not exist, "unknown" on any
# other error. While raft has no leader (the leader was just lost, an election is split) every
# query of the swarm fails, and that must never read as "done" or "gone".
# Labels node $1 with NODE_LABELS (key=value entries separated by tabs), in one update.
label_node() {
  local kv args=()
  local IFS=$'\t'
  for kv in ${NODE_LABELS:-}; do args+=(--label-add "$kv"); done
  [ "${#args[@]}" -eq 0 ] || docker node update "${args[@]}" "$1" >/dev/null
}
node_field() {
  local out
  if out=$(docker node inspect "$1" --format "$2" 2>&1); then
    printf '%s\n' "$out"
  else
    case "$out" in *"No such node"*|*"not found"*) echo gone ;; *) echo unknown ;; esac
  fi
}
# The services node $1 runs a task of (comma-separated): the replicated ones among them are what
# its drain waits for.
services_on() {
  docker node ps "$1" --filter desired-state=running --format '{{.Name}}' 2>/dev/null \
    | sed -E 's/\.[^.]+$//' | sort -u | paste -sd, -
}
# Disruption budgets. A service labelled swarm-lifecycle.min-available=N (or P%: of its
# replicas, rounded up) keeps N running tasks while a node drains: the drain starts only when
# the services node $1 runs ($2, comma-separated) would keep that many running on the other
# active nodes. Concurrent drains (several terminations at once, on several managers) check
# and drain under one swarm-wide lock, a docker config (its name is unique in the raft store),
# so each sees the nodes the others drained and their tasks not yet running again. Waits until
# $3 (SECONDS) while some task of a short service is on its way to running (the count can
# still grow); when none is, waiting cannot help (the swarm never moves a running task by
# itself) and the drain goes on, the budget reported broken. BUDGET=report (an involuntary
# disruption: Spot, a stopping instance) does not wait but reports. Sets budget_short (while
# it waits) / budget_broken (reported, budget_broken_by: involuntary|stuck) as
# name|running elsewhere|min;… and budget_invalid as name|label|why;… (ignored labels).
# budget_waited: the first budget_short it waited for, kept when the wait then ended in time.
# Returns 1 when the time ran out (not drained); 0 with the lock held (drain_unlock after).
budget_gate() {
  local labelled verdicts
  budget_short="" budget_broken="" budget_broken_by="" budget_invalid="" drain_lock="" budget_waited=""
  # No service of the node has a budget: nothing to wait for, no lock taken.
  labelled=$(budget_labels "$2")
  [ -n "$labelled" ] || return 0
  while :; do
    if [ "${BUDGET:-respect}" = report ] || drain_lock; then
      verdicts=$(budget_counts "$1" "$labelled" | budget_verdicts)
      budget_invalid=$(budget_pick invalid "$verdicts")
      budget_short=$(budget_pick short "$verdicts")
      budget_broken=$(budget_pick stuck "$verdicts")
      if [ "${BUDGET:-respect}" = report ]; then
        budget_broken="${budget_broken:+$budget_broken${budget_short:+;}}$budget_short" budget_short=""
        budget_broken_by=involuntary
      elif [ -n "$budget_broken" ] && [ -z "$budget_short" ]; then
        budget_broken_by=stuck
      elif [ -n "$budget_broken" ]; then
        budget_short="$budget_short;$budget_broken" budget_broken=""
      fi
      if [ -z "$budget_short" ]; then return 0; fi
      budget_waited=${budget_waited:-$budget_short}
      drain_unlock
    fi
    [ "$SECONDS" -ge "$3" ] && return 1
    sleep 1
  done
}
# The verdicts of kind $1 in $2, without the kind: name|…;name|…
budget_pick() {
  printf '%s\n' "$2" | awk -F'|' -v k="$1" '$1 == k { sub(/^[^|]*\|/, ""); print }' | paste -sd';' -
}
# name|label|replicas (or "global") of each service of $1 (comma-separated) that has a budget
# label: one inspect for all of them (a service removed meanwhile is left out).
budget_labels() {
  [ -n "$1" ] || return 0
  # shellcheck disable=SC2086
  docker service inspect ${1//,/ } --format '{{.Spec.Name}}|{{index .Spec.Labels "swarm-lifecycle.min-available"}}|{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}' 2>/dev/null \
    | grep -v -e '|<no value>|' -e '||' || true
}
# budget_labels' lines ($2), each with |running tasks on active, Ready nodes other than $1|
# running tasks on $1.
budget_counts() {
  local s line others
  others=$(docker node ls --format '{{.ID}} {{.Availability}} {{.Status}}' 2>/dev/null \
    | awk -v me="$1" '$1 != me && $2 == "Active" && $3 == "Ready" { print $1 }' | paste -sd' ' -)
  while IFS= read -r line; do
    s=${line%%|*}
    # shellcheck disable=SC2046
    printf '%s|%s\n' "$line" "$(docker inspect --format '{{.NodeID}} {{.Status.State}}' \
      $(docker service ps -q --filter desired-state=running "$s" 2>/dev/null) 2>/dev/null \
      | awk -v ok="$others" -v me="$1" 'BEGIN { n = split(ok, a, " "); for (i = 1; i <= n; i++) up[a[i]] }
          $2 == "running" && ($1 in up) { c++ } $2 == "running" && $1 == me { h++ }
          END { print c + 0 "|" h + 0 }')"
  done <<< "$2"
}
# Reads budget_counts' lines; prints ok|name, short|name|running|min (some of its replicas are
# on their way to running elsewhere: a task being replaced after another drain, one starting),
# stuck|name|running|min (every replica runs, here or elsewhere: the swarm never moves a
# running task by itself, so waiting cannot keep it), or invalid|name|label|why. A percentage
# is of the replicas, rounded up (66% of 3 is 2, 50% of 3 is 2); an invalid label is ignored:
# never a drain stuck on it.
budget_verdicts() {
  awk -F'|' 'NF >= 4 {
    name = $1; label = $2; replicas = $3; running = $4 + 0; on_way = replicas - running - $5
    if (replicas == "global") { print "invalid|" name "|" label "|on a global service"; next }
    if (label ~ /^[0-9]+$/) min = label + 0
    else if (label ~ /^[0-9]+%$/ && substr(label, 1, length(label) - 1) + 0 <= 100) {
      p = substr(label, 1, length(label) - 1) + 0; min = int(p * replicas / 100)
      if (min * 100 < p * replicas) min++
    } else { print "invalid|" name "|" label "|not a number or a percentage"; next }
    if (min > replicas + 0) { print "invalid|" name "|" label "|above its " replicas " replicas"; next }
    if (running >= min) print "ok|" name
    else if (on_way > 0) print "short|" name "|" running "|" min
    else print "stuck|" name "|" running "|" min
  }'
}
# The swarm-wide drain lock: taken (drain_lock set to its id) or not (1). A lock older than a
# minute was left by a command killed mid-way (it is held for seconds): removed by its id, so
# two that find it stale cannot remove each other's fresh one.
drain_lock() {
  local old created
  if drain_lock=$(printf '%s %s\n' "${AWS_SSM_INSTANCE_ID:-?}" "$(date +%s)" \
      | docker config create swarm-lifecycle.drain-lock - 2>/dev/null); then
    return 0
  fi
  drain_lock=""
  read -r old created < <(docker config inspect swarm-lifecycle.drain-lock \
    --format '{{.ID}} {{.CreatedAt.Unix}}' 2>/dev/null) || return 1
  if [ -n "$created" ] && [ $(($(date +%s) - created)) -gt 60 ]; then
    docker config rm "$old" >/dev/null 2>&1 || true
  fi
  return 1
}
drain_unlock() {
  [ -n "${drain_lock:-}" ] && docker config rm "$drain_lock" >/dev/null 2>&1
  drain_lock=""
  return 0
}
# On a manager: drains node $1 and waits up to $2 seconds for its tasks to stop there and for the
# replicated services it ran a task of to be back at their count elsewhere: no other service is
# waited for (one that cannot run anywhere would hold every drain). The services are kept in the
# node's label swarm-lifecycle.drained-services when the drain begins, so a later command (or
# another manager) resumes the same wait. Sets and prints remaining, pending, waiting_for (the
# services still short; "unknown" while the swarm cannot answer: not drained) and blocked (those
# of them whose tasks the swarm cannot place: name|docker's reason;...). $3 true: stop as soon as
# every service still short is blocked (the caller reports it and decides).
drain_node() {
  local deadline=$((SECONDS + $2)) tasks services mine next_look=0
  remaining=unknown pending=unknown waiting_for=unknown blocked=""
  if [ "$(node_field "$1" '{{.Spec.Availability}}')" != drain ]; then
    mine=$(services_on "$1")
    if ! budget_gate "$1" "$mine" "$deadline"; then
      # Not drained: draining now would take a service below its budget.
      remaining=$(docker node ps "$1" --filter desired-state=running -q 2>/dev/null | wc -l)
      pending=$(printf '%s' "$budget_short" | awk -F';' '{ print NF }')
      waiting_for=$(printf '%s' "$budget_short" | tr ';' '\n' | cut -d'|' -f1 | paste -sd, -)
      echo "remaining=$remaining"; echo "pending=$pending"; echo "waiting_for=$waiting_for"
      echo "budget_short=$budget_short"
      [ -n "$budget_invalid" ] && echo "budget_invalid=$budget_invalid"
      return 0
    fi
    docker node update --label-add "swarm-lifecycle.drained-services=${mine:--}" --availability drain "$1" >/dev/null
    drain_unlock
    [ -n "$budget_broken" ] && echo "budget_broken=$budget_broken" && echo "budget_broken_by=$budget_broken_by"
    # It waited for a budget and then drained within this command: said all the same.
    [ -n "$budget_waited" ] && echo "budget_waited=$budget_waited"
    [ -n "$budget_invalid" ] && echo "budget_invalid=$budget_invalid"
  else
    mine=$(node_field "$1" '{{index .Spec.Labels "swarm-lifecycle.drained-services"}}')
    # Drained by someone else (no label): every replicated service, as before there was one.
    case "$mine" in gone|unknown|"<no value>"|"") mine="*" ;; esac
  fi
  while :; do
    if tasks=$(docker node ps "$1" --format '{{.DesiredState}} {{.CurrentState}}' 2>/dev/null) \
        && services=$(docker service ls --format '{{.Name}} {{.Mode}} {{.Replicas}}' 2>/dev/null); then
      remaining=$(printf '%s\n' "$tasks" | grep -c -E '^Running|^[A-Za-z]+ Running' || true)
      waiting_for=$(printf '%s\n' "$services" | awk -v mine="$mine" '
        BEGIN { n = split(mine, m, ","); for (i = 1; i <= n; i++) want[m[i]] }
        $2 == "replicated" && (mine == "*" || $1 in want) { split($3, r, "/"); if (r[1]+0 < r[2]+0) print $1 }' \
        | paste -sd, -)
      pending=$(printf '%s' "$waiting_for" | awk -F, '{ print NF }')
      pending=${pending:-0}
      if [ "$remaining" -eq 0 ] && [ "$pending" -eq 0 ]; then blocked=""; break; fi
      # Its own tasks are gone and services are still short: can the swarm place them at all?
      if [ "$remaining" -eq 0 ] && [ "$SECONDS" -ge "$next_look" ]; then
        blocked=$(blocked_services "$waiting_for")
        next_look=$((SECONDS + 2))
        if [ "${3:-false}" = true ] && [ -n "$blocked" ] \
            && [ "$(printf '%s' "$blocked" | awk -F';' '{ print NF }')" -eq "$pending" ]; then break; fi
      fi
    else
      remaining=unknown pending=unknown waiting_for=unknown
    fi
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.5
  done
  echo "remaining=$remaining"
  echo "pending=$pending"
  echo "waiting_for=$waiting_for"
  if [ -n "${blocked:-}" ]; then echo "blocked=$blocked"; fi
}
# Of the services $1 (comma-separated), those with a task the scheduler cannot place, with its
# reason ("no suitable node (…)"): name|reason;… (the reason without ; | = or newlines).
blocked_services() {
  local s err out=""
  for s in ${1//,/ }; do
    err=$(docker service ps "$s" --filter desired-state=running --no-trunc --format '{{.CurrentState}}|{{.Error}}' \
      2>/dev/null | awk -F'|' '$1 ~ /^Pending/ && $2 ~ /no suitable node/ { print $2; exit }')
    # docker quotes the error in --no-trunc output.
    [ -n "$err" ] && out="${out:+$out;}$s|$(printf '%s' "$err" | tr -d '"' | tr ';|=\n' ',:  ')"
  done
  printf '%s' "$out"
}
# Scripts that act through a manager stop here (exit 6) when this instance cannot: its
# daemon is down or it is no longer a manager, or it is being retired itself while another
# manager can act (SPARE_OPERATORS > 0: a manager under a Spot warning would be demoted or
# interrupted mid-way through another's retirement). The caller then uses another manager.
require_manager() {
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
    echo "this instance is not a reachable swarm manager" >&2
    exit 6
  fi
  if [ "${SPARE_OPERATORS:-0}" -gt 0 ] && [ -e "$(retired_marker)" ]; then
    echo "this manager is being retired itself: another one operates" >&2
    exit 6
  fi
}
