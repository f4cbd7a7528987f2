#!/usr/bin/env bash
# Installs what the local cloud, the tests and the demo need. Idempotent; run as root.
# Debian packages: dockerd for the instances, a static busybox for their image, iproute2
# for the namespaces, python3-venv, binutils (nm). PyPI, locked with hashes (python/*.txt): moto (the local
# AWS), awscli (on the instances), pytest, ruff, in the project venv ($VENV, outside the
# clone); the system Python is never touched (PEP 668 distributions refuse it anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "deps.sh: the local cloud creates network namespaces: run as root" >&2; exit 1; }
need=()
command -v dockerd >/dev/null || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
# nm: make lint reads each binary's AWS calls from its symbols.
command -v nm >/dev/null || need+=(binutils)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  echo "deps: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# venv_sync VENV LOCK: the venv holds exactly what LOCK pins (hash-checked); a stamp of the
# lock's digest skips pip when nothing changed.
venv_sync() {
  local venv=$1 lock=$2 stamp digest
  stamp="$1/.lock-$(basename "$lock")"
  digest=$(sha256sum "$lock" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && return 0
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  echo "deps: $venv <- $lock"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$lock"
  echo "$digest" > "$stamp"
}
VENV=${VENV:-/var/cache/swarm-lifecycle/venv}
venv_sync "$VENV" python/requirements.txt
if [ "${WITH_INFRA:-0}" = 1 ]; then
  # Template checkers in their own venv: checkov pins its own boto3.
  venv_sync "${INFRA_VENV:-/var/cache/swarm-lifecycle/infra-venv}" python/checkers.txt
  venv_sync "${INFRA_VENV:-/var/cache/swarm-lifecycle/infra-venv}" python/terraform.txt
  # The AWS provider's resource schemas as the npm registry ships them in CDKTF's bindings
  # (scripts/terraform.py checks the module's arguments against them), pinned by integrity.
  cdktf=/var/cache/swarm-lifecycle/cdktf-provider-aws-21.22.1.tgz
  if [ ! -f "$cdktf" ]; then
    curl -fsSL -o "$cdktf.part" https://registry.npmjs.org/@cdktf/provider-aws/-/provider-aws-21.22.1.tgz
    want=BuSHeaQFUL9l33pBzIMRT7cTQ69AM2mLtijjteCPhVQRmvuhuj9Lvfymf7knAMhYqAT6+Lrls9jiGVW/Us3zrQ==
    [ "$(openssl dgst -sha512 -binary "$cdktf.part" | base64 -w0)" = "$want" ] \
      || { echo "deps: $cdktf: integrity mismatch" >&2; rm -f "$cdktf.part"; exit 1; }
    mv "$cdktf.part" "$cdktf"
  fi
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
if [ "${WITH_CARGO_LAMBDA:-0}" = 1 ]; then
  venv_sync "$VENV" python/cargo-lambda.txt
fi
