#!/usr/bin/env bash
# The virtualenv with the pinned oTree (tests/runtime/requirements-otree.txt) for the runtime tests.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OFOREST_CACHE:=/var/cache/oforest-otree}"
OTREE_VENV=${OTREE_VENV:-$OFOREST_CACHE/otree-venv-$(sha256sum tests/runtime/requirements-otree.txt | cut -c1-12)}
if [ ! -f "$OTREE_VENV/.complete" ]; then
  echo "creating $OTREE_VENV"
  rm -rf "$OTREE_VENV"
  python3 -m venv "$OTREE_VENV"
  "$OTREE_VENV/bin/pip" install -q -r tests/runtime/requirements-otree.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
  touch "$OTREE_VENV/.complete"
fi
echo "$OTREE_VENV"
