#!/usr/bin/env bash
# Build the upstream Kubernetes components pinned in tests/k8s/go.mod (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl, etcd) as static binaries.
# They are cached under $OFOREST_CACHE/k8s-bin-<hash>, the hash taken over go.mod, go.sum and this
# script: a warm cache builds nothing. Prints the binary directory on its last line.
#
# Cold: about 20-25 min on 2 cores (README "Tests"); warm: instant.
set -euo pipefail
cd "$(dirname "$0")"
: "${OFOREST_CACHE:=/var/cache/oforest-otree}"
hash=$(cat go.mod go.sum build.sh | sha256sum | cut -c1-12)
out=$OFOREST_CACHE/k8s-bin-$hash
if [ -f "$out/.complete" ]; then
  echo "k8s binaries current: $out" >&2
  echo "$out"; exit 0
fi
command -v go > /dev/null || { echo "tests/k8s/build.sh needs Go (apt-get install golang, or go.dev)" >&2; exit 1; }

# The version the components report comes from k8s.io/kubernetes' requirement, not from a constant
# of ours (without the stamp they report v0.0.0 and clients warn about version skew).
ver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
major=${ver#v}; major=${major%%.*}
minor=${ver#v*.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor
 -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z
 -X k8s.io/client-go/pkg/version.gitVersion=$ver -X k8s.io/client-go/pkg/version.gitMajor=$major
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
tmp=$out.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
start=$(date +%s)
echo "building Kubernetes $ver components into $out (cold: 20-25 min on 2 cores)" >&2
go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl >&2
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3 >&2
echo "built in $(( $(date +%s) - start )) s" >&2
"$tmp/kube-apiserver" --version >&2
touch "$tmp/.complete"
rm -rf "$out" && mv "$tmp" "$out"
echo "$out"
