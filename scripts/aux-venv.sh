#!/usr/bin/env bash
# A virtualenv for tools that pin libraries the controller's venv must not share (oTree for the
# runtime tests, checkov/kubernetes-validate for the manifest tests):
#   scripts/aux-venv.sh tests/runtime/requirements-otree.txt   -> prints the venv's path
# Created once per content of the requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:?usage: scripts/aux-venv.sh REQUIREMENTS_FILE}
source scripts/paths.sh
venv=$OFOREST_CACHE/aux-venv-$(basename "$req" .txt)-$(sha256sum "$req" | cut -c1-12)
if [ ! -f "$venv/.complete" ]; then
  echo "creating $venv" >&2
  rm -rf "$venv"
  mkdir -p "$OFOREST_CACHE"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$req" 2>&1 | { grep -v "^WARNING: Location" || true; } >&2
  touch "$venv/.complete"
fi
echo "$venv"
