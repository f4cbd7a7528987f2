#!/usr/bin/env bash
# Uploads the release zips (make package) and deploys infra/template.yaml.
#   make deploy STACK=swarm BUCKET=my-artefacts PARAMS="VpcId=vpc-1 SubnetIds=subnet-a,subnet-b,subnet-c"
# Needs AWS credentials; `make package` is the dry path that runs anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${STACK:?set STACK=<stack name>}" "${BUCKET:?set BUCKET=<artefact bucket>}"
target=${CARGO_TARGET_DIR:-target}
prefix="swarm-lifecycle/$(git rev-parse --short HEAD)/"
for f in lifecycle-hook ecs-state-change instance-notice scheduled-change reconcile drain-check; do
  aws s3 cp "$target/lambda/$f/bootstrap.zip" "s3://$BUCKET/${prefix}$f.zip"
done
# The template is over CloudFormation's 51,200-byte limit for a template body: deploy uploads
# it to the artefact bucket and passes its URL (a template in S3 may be far larger).
# shellcheck disable=SC2086
aws cloudformation deploy --stack-name "$STACK" --template-file infra/template.yaml \
  --s3-bucket "$BUCKET" --s3-prefix "${prefix%/}" \
  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
  --parameter-overrides ArtifactBucket="$BUCKET" ArtifactPrefix="$prefix" Architecture="${ARCH:-x86_64}" ${PARAMS:-}
aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs' --output table
