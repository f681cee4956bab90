#!/usr/bin/env bash
# Create (or reuse) the virtualenv holding the pinned controller dependencies (requirements-dev.txt).
# The venv path carries a hash of requirements-dev.txt, so a changed pin gets a fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OFOREST_CACHE:=/var/cache/oforest-otree}"
: "${VENV:=$OFOREST_CACHE/venv-$(cat requirements-dev.txt requirements-lock.txt | sha256sum | cut -c1-12)}"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" > /dev/null || PYTHON=python3

if [ "${1:-}" = --relock ]; then
  # Resolve requirements-dev.txt afresh and write the full pin list to requirements-lock.txt.
  tmp=$(mktemp -d)
  "$PYTHON" -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q -r requirements-dev.txt
  { head -2 requirements-lock.txt; "$tmp/venv/bin/pip" freeze --exclude-editable; } > requirements-lock.txt.new
  mv requirements-lock.txt.new requirements-lock.txt
  rm -rf "$tmp"
  echo "requirements-lock.txt rewritten"
  exit 0
fi

if [ ! -f "$VENV/.complete" ]; then
  echo "creating $VENV with $($PYTHON --version)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # (this machine's pip config names local wheel folders that may not exist: drop that noise)
  "$VENV/bin/pip" install -q -r requirements-dev.txt -c requirements-lock.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
  touch "$VENV/.complete"
else
  echo "venv $VENV is current"
fi

# Make the repository importable as the collection oforest.otree for playbooks run from here.
mkdir -p .cache/collections/ansible_collections/oforest
ln -sfn ../../../.. .cache/collections/ansible_collections/oforest/otree
