#!/usr/bin/env bash
# Checks infra/template.yaml and infra/worker-group.yaml (and the Terraform module over them): cfn-lint (CloudFormation's own rules), checkov (security
# baseline; every skip carries its reason in the template) and the project's cfn-guard rules
# (least privilege, swarm ports, hook defaults). Tools come from scripts/deps.sh WITH_INFRA=1.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${INFRA_VENV:-/var/cache/swarm-lifecycle/infra-venv}
templates=(infra/template.yaml infra/worker-group.yaml)
# checkov reads a conditional resource only when its condition holds with the defaults: the
# options (shared storage, ECS) are checked again in a copy that turns them on.
options=$(mktemp -d)/template-options.yaml
trap 'rm -rf "$(dirname "$options")"' EXIT
"$venv/bin/python" - infra/template.yaml "$options" <<'PY'
import sys
text = open(sys.argv[1]).read()
for param, old, new in [("SharedStorage", "none", "efs"),
                        ("EcsClusterArn", '""', "arn:aws:ecs:us-east-1:123456789012:cluster/swarm")]:
    block = f"  {param}:\n    Type: String\n    Default: {old}\n"
    assert block in text, param
    text = text.replace(block, f"  {param}:\n    Type: String\n    Default: {new}\n")
open(sys.argv[2], "w").write(text)
PY
echo "cfn-lint:";  "$venv/bin/cfn-lint" "${templates[@]}" "$options" && echo "  clean"
# Its serverless rules: each finding is answered in the template (a resource's cfn-lint
# ignore_checks, with the reason); they must still catch the violations of their test case.
echo "cfn-lint-serverless:"; "$venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules -- infra/template.yaml \
  && echo "  clean"
if "$venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules -- infra/rules/tests/serverless_violations.yaml \
    >/dev/null 2>&1; then
  echo "cfn-lint-serverless passed its violation case" >&2; exit 1
fi
echo "parliament:"; "$venv/bin/python" scripts/iam-lint.py
# --skip-download and BC_SKIP_MAPPING: checkov runs offline, from its packaged checks only.
echo "checkov:";   BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" -f "${templates[@]}" "$options" --framework cloudformation \
  --compact --quiet --skip-download
echo "cfn-guard:"
for t in "${templates[@]}" "$options"; do cfn-guard validate -r infra/rules/swarm.guard -d "$t" --show-summary pass,fail; done
# The rules must be able to fail: each test case is a violation they have to catch.
echo "cfn-guard rule tests:"; cfn-guard test -r infra/rules/swarm.guard -t infra/rules/tests/swarm_tests.yaml > /dev/null \
  && echo "  $(grep -c '^- name:' infra/rules/tests/swarm_tests.yaml) violation cases caught"
# The Terraform module over the same templates (infra/terraform/): variables one to one with the
# parameters, terraform fmt, arguments against the AWS provider's schema; each check proven.
echo "terraform module:"; "$venv/bin/python" scripts/terraform.py check
