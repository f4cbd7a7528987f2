#!/usr/bin/env bash
# New code for a deployed stack's functions, through `cargo lambda deploy`: the code only.
#   make deploy-code CLUSTER=demo            (after make package; BIN_DIR=<dir of <bin>/bootstrap>)
# Each function of the cluster (swarm-<cluster>-<name>, as infra/template.yaml names them) that
# exists gets its binary; its role, environment, memory, timeout and logging stay the stack's:
# cargo lambda deploy changes a configuration only for what it is given, and it is given only
# --tracing active, the template's own mode, so no default of cargo lambda's can differ. A
# function that does not exist is skipped, never created (cargo lambda would create it with a
# role of its own). The stack keeps pointing at its S3 artefacts: the next `make deploy` puts
# them back. For a development stack; releases go through `make deploy`.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CLUSTER:?set CLUSTER=<the ClusterName of the stack>}"
dir=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/lambda}
endpoint=()
[ -n "${AWS_ENDPOINT_URL:-}" ] && endpoint=(--endpoint-url "$AWS_ENDPOINT_URL")
updated=0
for pair in launch-hook:lifecycle-hook terminate-hook:lifecycle-hook ecs-state-change:ecs-state-change \
            instance-notice:instance-notice spot-notice:instance-notice scheduled-change:scheduled-change \
            reconcile:reconcile; do
  name="swarm-$CLUSTER-${pair%%:*}" bin=${pair##*:}
  if ! aws lambda get-function --function-name "$name" --query Configuration.FunctionName --output text >/dev/null 2>&1; then
    echo "deploy-code: $name: no such function in this account and region, skipped"
    continue
  fi
  [ -f "$dir/$bin/bootstrap" ] || { echo "deploy-code: $dir/$bin/bootstrap missing: run make package" >&2; exit 1; }
  cargo lambda deploy "${endpoint[@]}" --binary-path "$dir/$bin/bootstrap" --tracing active "$name"
  updated=$((updated + 1))
done
[ "$updated" -gt 0 ] || { echo "deploy-code: no function of cluster $CLUSTER found" >&2; exit 1; }
