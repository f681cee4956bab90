#!/usr/bin/env bash
# The test suite, stage by stage. `tests/ci.sh all` (= `make test`) runs every stage in order on a
# fresh machine of ours and ends with one summary table: stage, result, seconds, platforms.
# `tests/ci.sh STAGE...` runs single stages (yamllint, ansible-lint, sanity, build, unit,
# molecule-<scenario>).
#
# Environment: OFOREST_CACHE (venv, images' keyring, logs; scripts/paths.sh: root /var/cache/oforest-otree),
#              UBUNTU (test host releases, default "20.04"), OFOREST_HOST_RELEASE (the release of
#              the host scenarios, below), OFOREST_OPENSTACK_CHECKS (paths, walkthrough or all: the
#              openstack_server scenario's longer checks, below), SCENARIOS (default: every molecule/*/).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/paths.sh   # OFOREST_CACHE, VENV
: "${UBUNTU:=20.04}"
# The host scenarios (default, harden) run on one supported Ubuntu release per run, in turn by the
# commit count: 20.04, 22.04, 24.04 (a matrix spread over runs: three runs in a row cover all
# three; molecule-site takes every stage through 20.04 in every run). OFOREST_HOST_RELEASE picks
# one. molecule-microk8s stays on 20.04: on 22.04 and 24.04 hosts under podman, snapd's snap-confine
# refuses to run the node snap's install hook: this machine has no CAP_SYS_RESOURCE (docs/testing.md).
HOST_RELEASES=(20.04 22.04 24.04)
COMMITS=$(git rev-list --count HEAD 2>/dev/null || echo 0)
: "${OFOREST_HOST_RELEASE:=${HOST_RELEASES[$(( COMMITS % 3 ))]}}"
# molecule-openstack_server's two longer checks (the provisioning paths, ~4 min, and README's
# walkthrough commands, ~1.5 min) likewise alternate by the commit count; "all" runs both.
OPENSTACK_CHECKS=(paths walkthrough)
: "${OFOREST_OPENSTACK_CHECKS:=${OPENSTACK_CHECKS[$(( COMMITS % 2 ))]}}"
export OFOREST_CACHE VENV UBUNTU OFOREST_HOST_RELEASE OFOREST_OPENSTACK_CHECKS
HOST_SCENARIOS=" default harden "
LOGDIR=$ROOT/tests/output/logs
mkdir -p "$LOGDIR"

declare -a ROWS=()
FAILED=0
FAILED_STAGES=()

platforms_of() { # the Ubuntu releases a stage ran on
  case "$1" in
    molecule-microk8s) echo "2 x ubuntu ${UBUNTU// /, } (podman), one cluster + REAL Kubernetes $(k8s_version) nodes (STAND-IN snap packaging)" ;;
    molecule-site) echo "ubuntu ${UBUNTU// /, } (podman) + REAL Kubernetes $(k8s_version) node (STAND-IN snap packaging)" ;;
    molecule-lab_host) echo "controller as a non-root user + ubuntu 20.04 (root podman) + REAL Kubernetes $(k8s_version) node (STAND-IN snap packaging)" ;;
    molecule-scaffold) echo "controller" ;;
    molecule-*)
      if [[ $HOST_SCENARIOS == *" ${1#molecule-} "* ]]; then echo "ubuntu $OFOREST_HOST_RELEASE (podman)"
      elif grep -q "name: podman" "molecule/${1#molecule-}/molecule.yml"; then echo "ubuntu ${UBUNTU// /, } (podman)"
      elif [ "$1" = molecule-openstack_server ]; then
        echo "controller + REAL OpenStack Zed (Debian 12 packages); checks: $OFOREST_OPENSTACK_CHECKS"
      elif [ -n "${OFOREST_KUBECONFIG:-}" ]; then echo "controller + real cluster"
      else echo "controller + STAND-IN k8s API server"; fi ;;
    images) echo "ubuntu $(image_releases | sed 's/ /, /g')" ;;
    openstack-image) echo "OpenStack Zed from Debian 12 packages (podman)" ;;
    manifests) echo "kubernetes-validate (k8s 1.31-1.35), checkov, check-jsonschema (GitLab CI)" ;;
    pipeline) echo "gitlab-ci-local $(grep -o '"gitlab-ci-local": "[0-9.]*' tests/pipeline/package.json | grep -o '[0-9.]*$') (shell executor), oTree bots, buildah" ;;
    otree-runtime) echo "oTree $(grep -o 'otree==[0-9.]*' tests/runtime/requirements-otree.txt | cut -d= -f3), PostgreSQL (Debian), Chromium" ;;
    integration) if [ -n "${OFOREST_KUBECONFIG:-}" ]; then echo "real cluster ($OFOREST_KUBECONFIG)"
                 else echo "REAL Kubernetes $(k8s_version) control plane (+ STAND-IN for a rollout)"; fi ;;
    k8s-build) echo "Kubernetes $(k8s_version), etcd from Go modules (tests/k8s/go.mod)" ;;
    sanity) echo "python $("$VENV/bin/python" -c 'import sys;print("%d.%d"%sys.version_info[:2])') (+3.8 compile on 20.04)" ;;
    *) echo "controller" ;;
  esac
}

k8s_version() { awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' tests/k8s/go.mod; }

run_stage() { # run_stage NAME COMMAND...: time it, log it, record a row
  local name=$1; shift
  local start rc log=$LOGDIR/$name.log
  echo "=== $name"
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local secs=$(( $(date +%s) - start ))
  if [ "$rc" = 0 ]; then
    ROWS+=("$(printf '%-28s %-6s %6s  %s' "$name" pass "$secs" "$(platforms_of "$name")")")
  else
    ROWS+=("$(printf '%-28s %-6s %6s  %s' "$name" FAIL "$secs" "$(platforms_of "$name") (log: tests/output/logs/$name.log)")")
    FAILED=1
    FAILED_STAGES+=("$name")
  fi
  return "$rc"
}

activate() { # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
}

stage_yamllint() { activate; yamllint --strict .; }

# ansible-lint also looks in ~/.ansible/collections, where Molecule's prerun leaves a copy of this
# collection from an earlier run: an old copy there hides a new module (syntax-check[unknown-module]).
# Molecule makes a fresh copy on its next run.
stage_ansible-lint() {
  activate
  rm -rf "${HOME:?}/.ansible/collections/ansible_collections/oforest/otree"
  NO_COLOR=1 ansible-lint --nocolor --profile production --offline
}

stage_sanity() {
  activate
  # ansible-test needs the collection at .../ansible_collections/oforest/otree: copy the tracked
  # (and new, not ignored) files there.
  local dest=$OFOREST_CACHE/sanity/ansible_collections/oforest/otree
  rm -rf "$dest" && mkdir -p "$dest"
  git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  # ansible-test fetches its pip bootstrap from a host we cannot reach: give it our shim (its
  # documented fallback is a bootstrap script saved in its cache).
  local pipver
  pipver=$(python -c 'import re,ansible_test._internal.python_requirements as m,inspect; print(re.search(r"pip=.([\d.]+).", inspect.getsource(m.get_venv_packages)).group(1))')
  mkdir -p ~/.ansible/test/cache
  cp tests/sanity/get_pip_shim.py ~/.ansible/test/cache/get_pip_"${pipver//./_}".py
  (cd "$dest" && ansible-test sanity --python "$("$VENV/bin/python" -c 'import sys;print("%d.%d"%sys.version_info[:2])')" \
     --color no --exclude tests/ --exclude benchmarks/ --exclude scripts/ --exclude .ci/) 2>&1 |
    grep -v "^WARNING: Location .* is ignored"; [ "${PIPESTATUS[0]}" = 0 ] || return 1
  # Modules run on Ubuntu 20.04's Python 3.8: compile them with that very interpreter.
  podman run --rm --network none -v "$ROOT/plugins:/src:ro" localhost/oforest/ubuntu:20.04 \
    sh -c 'cp -r /src /tmp/plugins && python3 --version && python3 -m compileall -q /tmp/plugins'
}

stage_build() {
  activate
  local out=$ROOT/tests/output/build empty
  rm -rf "$out" && mkdir -p "$out"
  ansible-galaxy collection build --force --output-path "$out" . || return 1
  empty=$(mktemp -d)
  # An empty path, away from this checkout's ansible.cfg and collection link. --no-deps: Galaxy is
  # unreachable here; the dependencies come from the `ansible` package.
  (cd "$empty" && unset ANSIBLE_CONFIG; export ANSIBLE_COLLECTIONS_PATH="$empty" &&
   ansible-galaxy collection install --no-deps -p "$empty" "$out"/oforest-otree-*.tar.gz &&
   test -f "$empty/ansible_collections/oforest/otree/MANIFEST.json" &&
   ansible-galaxy collection list oforest.otree) || { echo "the built tarball did not install"; return 1; }
  rm -rf "$empty"
}

stage_unit() {
  activate
  python -m pytest -q -p no:cacheprovider tests/unit
}

# Upstream Kubernetes components from their Go modules, each cached by a hash of its go.mod, go.sum
# and the build script (tests/k8s/build.sh).
stage_k8s-build() { tests/k8s/build.sh; }

# Against a REAL Kubernetes control plane started from those binaries (tests/k8s/controlplane.py),
# or a real cluster when OFOREST_KUBECONFIG names a kubeconfig.
stage_integration() {
  activate
  python -m pytest -q -p no:cacheprovider tests/integration
}

# oTree's runtime contract for real: the rendered container run with the pinned oTree against
# Debian's PostgreSQL, a session played by oTree's browser bots in headless Chromium.
stage_otree-runtime() {
  activate
  scripts/aux-venv.sh tests/runtime/requirements-otree.txt > /dev/null || return 1
  python -m pytest -q -p no:cacheprovider tests/runtime
}

# The scaffolded pipeline's jobs (test, build) run by gitlab-ci-local with the shell executor.
stage_pipeline() {
  activate
  python -m pytest -q -p no:cacheprovider tests/pipeline
}

# Rendered manifests: kubernetes-validate --strict (Kubernetes 1.31-1.35) and checkov.
stage_manifests() {
  activate
  scripts/aux-venv.sh tests/manifests/requirements-tools.txt > /dev/null || return 1
  python -m pytest -q -p no:cacheprovider tests/manifests
}

image_releases() { printf '%s\n' $UBUNTU "$OFOREST_HOST_RELEASE" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

stage_molecule() { # stage_molecule SCENARIO
  activate
  export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
  if [[ $HOST_SCENARIOS == *" $1 "* ]]; then export OFOREST_UBUNTU=$OFOREST_HOST_RELEASE; fi
  molecule test -s "$1"
}

scenarios() {
  if [ -n "${SCENARIOS:-}" ]; then echo "$SCENARIOS"; return; fi
  # default first (proves the harness), then the others in name order
  { [ -d molecule/default ] && echo default
    find molecule -mindepth 2 -maxdepth 2 -name molecule.yml | cut -d/ -f2 | sort | grep -vx default; } | tr '\n' ' '
}

summary() {
  echo
  echo "==================== summary ===================="
  printf '%-28s %-6s %6s  %s\n' stage result secs platforms
  printf '%s\n' "${ROWS[@]}"
  echo "================================================="
  if [ "$FAILED" = 0 ]; then echo "all stages passed"; else echo "some stages FAILED"; fi
  # Only the end of this output may reach whoever reads a CI run (not the logs): say why, briefly.
  local name
  for name in "${FAILED_STAGES[@]}"; do
    echo "--- why $name failed (the log's error lines; all in tests/output/logs/$name.log)"
    python3 tests/failure_excerpt.py "$LOGDIR/$name.log" 5 || tail -n 5 "$LOGDIR/$name.log"
  done
}

run_named() { # one stage by name
  case "$1" in
    setup) run_stage setup scripts/setup-host.sh ;;
    venv) run_stage venv scripts/venv.sh ;;
    images) run_stage images tests/images/build.sh $(image_releases) ;;
    openstack-image) run_stage openstack-image tests/openstack/build.sh ;;
    molecule-*) run_stage "$1" stage_molecule "${1#molecule-}" ;;
    yamllint|ansible-lint|sanity|build|unit|k8s-build|integration|manifests|otree-runtime|pipeline)
      run_stage "$1" "stage_$1" ;;
    *) echo "unknown stage '$1'"; return 2 ;;
  esac
}

if [ "${1:-all}" = all ]; then
  # Prerequisites: without them nothing else can run, so stop at the first failure.
  for s in setup venv images; do
    run_named "$s" || { summary; exit 1; }
  done
  for s in yamllint ansible-lint sanity build unit k8s-build integration manifests otree-runtime openstack-image pipeline; do
    run_named "$s"
  done
  for sc in $(scenarios); do run_named "molecule-$sc"; done
else
  for s in "$@"; do run_named "$s"; done
fi
summary
exit "$FAILED"
