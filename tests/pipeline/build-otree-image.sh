#!/usr/bin/env bash
# The sample experiment's oTree image for the node's experiment pods, built as the scaffolded
# pipeline's build job builds it: playbooks/scaffold_experiment.yml on tests/runtime/sample_project,
# then its Dockerfile, on the STAND-IN python base (tests/pipeline/build-python-base.sh: no registry
# here for the pinned python image). Needs ansible-playbook on PATH (the venv).
#   tests/pipeline/build-otree-image.sh IMAGE     build (or reuse) it under that name; prints it
# Cached: the image carries the label oforest.recipe=<hash of the sample project, the scaffold, this
# script, the base image and the name>.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=${1:?usage: tests/pipeline/build-otree-image.sh IMAGE}
BASE=localhost/oforest/python-base:3.11-bookworm
"$ROOT/tests/pipeline/build-python-base.sh" >&2
hash=$( { cat "$0"; find "$ROOT/tests/runtime/sample_project" "$ROOT/playbooks/scaffold_experiment.yml" \
            "$ROOT/roles/scaffold" -type f -print0 | sort -z | xargs -0 cat;
          podman image inspect --format '{{.Id}}' "$BASE"; echo "$NAME"; } | sha256sum | cut -c1-16)
if [ "$(podman image inspect --format '{{index .Labels "oforest.recipe"}}' "$NAME" 2> /dev/null)" = "$hash" ]; then
  echo "$NAME"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$ROOT/tests/runtime/sample_project" "$work/pgg"
ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections ansible-playbook -i localhost, \
  -e "ansible_python_interpreter=$(command -v python3)" -e "scaffold_dest=$work/pgg" \
  -e '{"scaffold_experiment": {"name": "pgg", "host": "pgg.experiments.example.org"}}' \
  "$ROOT/playbooks/scaffold_experiment.yml" > "$work/scaffold.log" 2>&1 || { cat "$work/scaffold.log" >&2; exit 1; }
buildah bud -q --network host --build-arg "PYTHON_IMAGE=$BASE" --label "oforest.recipe=$hash" -t "$NAME" \
  "$work/pgg" >&2
echo "built $NAME from the scaffolded Dockerfile" >&2
echo "$NAME"
