#!/usr/bin/env bash
# Re-locks python/*.in into python/*.txt: every package pinned with the hashes of all its
# files, for every platform and Python >= 3.11 (Debian 12's; Ubuntu 24.04 has 3.12).
# uv does the resolving; it lives in a throwaway venv and is never needed to install.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool"
"$tool/bin/pip" install -q --disable-pip-version-check uv==0.13.9
for in in python/*.in; do
  "$tool/bin/uv" pip compile --quiet --generate-hashes --universal --python-version 3.11 \
    "$in" -o "${in%.in}.txt"
done
