#!/usr/bin/env bash
# Build the upstream components the real-cluster tests run, as static binaries, from the Go modules
# pinned here (no Go code of ours or of other projects is kept in the repository):
#   tests/k8s/go.mod                 Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler,
#                                    kubelet, kube-proxy, kubectl) and etcd
#   tests/k8s/components/*/go.mod    one module each: CNI plugins, kube-router (the CNI that enforces
#                                    NetworkPolicy), CoreDNS, Helm, Traefik (ingress addon),
#                                    local-path-provisioner (hostpath-storage addon), cert-manager
#                                    (cert-manager addon), Pebble and its DNS server (ACME in tests)
# Each module is cached under $OFOREST_CACHE/gobuild/<name>-<hash of its go.mod, go.sum and this
# script>, so changing one pin rebuilds only that module. All binaries are then gathered (hard
# links) into $OFOREST_CACHE/k8s-bin-<hash of all>, whose path is printed on the last line.
#
# Cold: Kubernetes + etcd took 385 s on our 2 cores, the components a few minutes more; warm: instant.
set -euo pipefail
cd "$(dirname "$0")"
source ../../scripts/paths.sh   # OFOREST_CACHE
command -v go > /dev/null || { echo "tests/k8s/build.sh needs Go (apt-get install golang-go, or go.dev)" >&2; exit 1; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly

modhash() { cat "$1/go.mod" "$1/go.sum" build.sh | sha256sum | cut -c1-12; }

build_module() { # build_module NAME DIR: every `tool` of DIR/go.mod into the module's cache dir
  local name=$1 dir=$2 out tmp start ldflags="-s -w"
  out=$OFOREST_CACHE/gobuild/$name-$(modhash "$dir")
  if [ -f "$out/.complete" ]; then echo "$out"; return; fi
  tmp=$out.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  start=$(date +%s)
  if [ "$name" = kubernetes ]; then
    # The version the components report comes from k8s.io/kubernetes' requirement (without the
    # stamp they report v0.0.0 and clients warn about version skew).
    local ver major minor pkg=k8s.io/component-base/version
    ver=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
    major=${ver#v}; major=${major%%.*}
    minor=${ver#v*.}; minor=${minor%%.*}
    ldflags="-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor
      -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z
      -X k8s.io/client-go/pkg/version.gitVersion=$ver"
  fi
  if [ "$name" = local-path-provisioner ]; then # it says 0.0.1 without it
    ldflags="-s -w -X main.VERSION=$(cd "$dir" && go list -m -f '{{.Version}}' github.com/rancher/local-path-provisioner)"
  fi
  if [ "$name" = traefik ]; then # `traefik version` says "dev" without it
    ldflags="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$(cd "$dir" && go list -m -f '{{.Version}}' github.com/traefik/traefik/v3)"
  fi
  if [ "$name" = cert-manager ]; then # its pods say "canary" without it
    ldflags="-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$(cd "$dir" && go list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)"
  fi
  echo "building $name ($dir/go.mod) into $out" >&2
  local pkgs=() p
  mapfile -t pkgs < <(cd "$dir" && go list tool)
  for p in "${pkgs[@]}"; do
    local bin=${p##*/}
    [[ $bin =~ ^v[0-9]+$ ]] && bin=$(basename "$(dirname "$p")")    # .../server/v3 -> server
    [ "$p" = go.etcd.io/etcd/server/v3 ] && bin=etcd
    [ "$name" = cert-manager ] && bin=cert-manager-$bin                   # .../cmd/controller
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$bin" "$p") >&2
  done
  echo "$name built in $(( $(date +%s) - start )) s" >&2
  touch "$tmp/.complete"
  rm -rf "$out" && mv "$tmp" "$out"
  echo "$out"
}

dirs=()
dirs+=("$(build_module kubernetes .)")
for d in components/*/; do
  d=${d%/}
  dirs+=("$(build_module "$(basename "$d")" "$d")")
done

all=$OFOREST_CACHE/k8s-bin-$(printf '%s\n' "${dirs[@]}" | sha256sum | cut -c1-12)
if [ ! -f "$all/.complete" ]; then
  rm -rf "$all.tmp" && mkdir -p "$all.tmp"
  for d in "${dirs[@]}"; do cp -al "$d"/* "$all.tmp/"; done
  "$all.tmp/kube-apiserver" --version >&2
  touch "$all.tmp/.complete"
  rm -rf "$all" && mv "$all.tmp" "$all"
fi
echo "binaries: $all" >&2
echo "$all"
