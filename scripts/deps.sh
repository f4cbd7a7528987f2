#!/usr/bin/env bash
# Installs what the local cloud, the tests and the demo need. Idempotent; run as root.
# Debian packages: dockerd for the instances, a static busybox for their image, iproute2
# for the namespaces. PyPI: moto (the local AWS), awscli (on the instances), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "deps.sh: the local cloud creates network namespaces: run as root" >&2; exit 1; }
need=()
command -v dockerd >/dev/null || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  echo "deps: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r localcloud/requirements.txt
if [ "${WITH_INFRA:-0}" = 1 ]; then
  # Template checkers in their own venv (outside the clone): checkov pins its own boto3.
  venv=${INFRA_VENV:-/var/cache/swarm-lifecycle/infra-venv}
  [ -x "$venv/bin/checkov" ] && [ -x "$venv/bin/cfn-lint" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check cfn-lint checkov
  }
  command -v cfn-guard >/dev/null || cargo install --locked cfn-guard --version 3.2.1
fi
if [ "${WITH_LINT:-0}" = 1 ] && ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy
fi
if [ "${WITH_LINT:-0}" = 1 ] && ! command -v shellcheck >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi
if [ "${WITH_CARGO_FUZZ:-0}" = 1 ] && ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz
fi
if [ "${WITH_CARGO_LAMBDA:-0}" = 1 ] && ! command -v cargo-lambda >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore cargo-lambda
fi
