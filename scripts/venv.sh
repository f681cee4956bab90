#!/usr/bin/env bash
# Create (or reuse) the virtualenv holding the pinned controller dependencies (requirements-dev.txt)
# where scripts/paths.sh says (root: /var/cache/oforest-otree, others: ~/.cache/oforest-otree).
#   scripts/venv.sh            create it (or say it is current)
#   scripts/venv.sh --path     print its path only (source "$(scripts/venv.sh --path)/bin/activate")
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/paths.sh
if [ "${1:-}" = --path ]; then
  echo "$VENV"
  exit 0
fi
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
  mkdir -p "$(dirname "$VENV")"
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
