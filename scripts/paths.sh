#!/usr/bin/env bash
# The one place that says where the cached venv, images' keyring and build outputs live.
#   source scripts/paths.sh        sets OFOREST_CACHE and VENV (keeps values already set)
#   scripts/paths.sh cache|venv    prints one of them (the Makefile, README's set-up commands)
# Root (CI, a lab's build machine): /var/cache/oforest-otree. Anyone else: the user's cache folder,
# so the set-up works on a laptop without sudo. The venv's name carries a hash of the pinned
# requirements, so a changed pin gets a fresh venv.
_oforest_root=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${OFOREST_CACHE:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    OFOREST_CACHE=/var/cache/oforest-otree
  else
    OFOREST_CACHE=${XDG_CACHE_HOME:-${HOME:?set HOME or OFOREST_CACHE}/.cache}/oforest-otree
  fi
fi
: "${VENV:=$OFOREST_CACHE/venv-$(cat "$_oforest_root/requirements-dev.txt" "$_oforest_root/requirements-lock.txt" \
  | sha256sum | cut -c1-12)}"
export OFOREST_CACHE VENV
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    cache) echo "$OFOREST_CACHE" ;;
    venv) echo "$VENV" ;;
    *) echo "usage: scripts/paths.sh cache|venv" >&2; exit 2 ;;
  esac
fi
