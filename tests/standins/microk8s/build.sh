#!/usr/bin/env bash
# Pack the MicroK8s-shaped node snap (STAND-IN packaging, REAL components) for the test hosts.
#
# The snap store is not reachable here, so MicroK8s' own snap cannot be installed. This snap has
# MicroK8s' shape (name, commands, $SNAP_DATA/args files with MicroK8s 1.35's default arguments,
# daemons, addons) and runs real upstream parts:
#   - Kubernetes v1.35 and etcd, CNI plugins, kube-router, CoreDNS, Helm built from their Go modules
#     (tests/k8s/build.sh);
#   - containerd, runc and ipset from the Ubuntu 20.04 archive (pinned versions below);
#   - container images without a registry: pause compiled from the Kubernetes module's own
#     build/pause/linux/pause.c, component images from the built binaries (buildah, FROM scratch),
#     imported into containerd by the snap under the names the manifests use.
# Output: $OFOREST_CACHE/microk8s-node-<hash>.snap (hash over this folder, the binaries' folder name
# and the pins), printed on the last line. A warm cache packs nothing.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
: "${OFOREST_CACHE:=/var/cache/oforest-otree}"
UBUNTU_IMAGE=localhost/oforest/ubuntu:20.04
# Ubuntu 20.04 packages in the snap (focal-updates / focal): MicroK8s bundles its own containerd and
# runc the same way.
DEBS="containerd=1.7.24-0ubuntu1~20.04.2 runc=1.1.12-0ubuntu2~20.04.1 ipset=7.5-1ubuntu0.20.04.1
 libipset13=7.5-1ubuntu0.20.04.1 python3-yaml=5.3.1-1ubuntu0.1 busybox-static=1:1.30.1-4ubuntu6.5"
PAUSE_IMAGE=registry.k8s.io/pause:3.10           # MicroK8s 1.35 containerd-template.toml sandbox_image
COREDNS_IMAGE=docker.io/coredns/coredns:1.13.1    # microk8s-core-addons 1.35 addons/dns/coredns.yaml
TRAEFIK_IMAGE=docker.io/traefik:v3.6.3            # the stand-in chart's appVersion (charts/traefik/Chart.yaml)
HOSTPATH_IMAGE=localhost/oforest/local-path-provisioner:v0.0.30   # addons/hostpath-storage.yaml
BUSYBOX_IMAGE=localhost/oforest/busybox-focal:1.30.1              # its helper pods (Ubuntu's busybox-static)
CERT_MANAGER_VERSION=v1.11.5     # tests/k8s/components/cert-manager; images as its chart names them

BIN=$("$HERE/../../k8s/build.sh" | tail -1)
hash=$( { echo "$BIN $DEBS $PAUSE_IMAGE $COREDNS_IMAGE $TRAEFIK_IMAGE $HOSTPATH_IMAGE $BUSYBOX_IMAGE $CERT_MANAGER_VERSION"; find . -type f ! -name '*.pyc' ! -name prepare-host.sh -print0 | sort -z |
          xargs -0 sha256sum; } | sha256sum | cut -c1-12)
out=$OFOREST_CACHE/microk8s-node-$hash.snap
if [ -f "$out" ]; then echo "node snap current: $out" >&2; echo "$out"; exit 0; fi
command -v mksquashfs > /dev/null || { echo "needs mksquashfs (apt-get install squashfs-tools)" >&2; exit 1; }

work=$(mktemp -d "$OFOREST_CACHE/microk8s-node-build.XXXX")
trap 'rm -rf "$work"; buildah rm -a > /dev/null 2>&1 || true' EXIT
root=$work/root
mkdir -p "$root/meta/hooks" "$root/bin" "$root/opt/cni/bin" "$root/images" "$root/lib"
start=$(date +%s)

# The snap's own files
cp snap/snap.yaml "$root/meta/snap.yaml"
cp snap/hooks/* "$root/meta/hooks/"
cp bin/* "$root/bin/"
cp -r default-args addons charts "$root/"
chmod 0755 "$root"/meta/hooks/* "$root"/bin/*

# Upstream binaries built from Go modules
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd helm kube-router; do
  cp "$BIN/$b" "$root/bin/"
done
for b in bridge loopback host-local portmap; do cp "$BIN/$b" "$root/opt/cni/bin/"; done

# containerd, runc, ipset from the Ubuntu archive
mkdir -p "$work/debs"
podman run --rm --network host -v "$work/debs:/out" "$UBUNTU_IMAGE" sh -c \
  "apt-get update -qq && cd /out && apt-get download -qq $(echo $DEBS) 2>&1 | { grep -v unsandboxed || true; }" >&2
[ "$(ls "$work"/debs/*.deb 2> /dev/null | wc -l)" = "$(echo $DEBS | wc -w)" ] ||
  { echo "could not download $(echo $DEBS) from the Ubuntu archive" >&2; exit 1; }
for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/debroot"; done
cp "$work"/debroot/usr/bin/{containerd,containerd-shim-runc-v2,ctr} "$root/bin/"
cp "$work"/debroot/usr/sbin/runc "$root/bin/"
cp "$work"/debroot/sbin/ipset "$root/bin/" 2>/dev/null || cp "$work"/debroot/usr/sbin/ipset "$root/bin/"
cp -a "$work"/debroot/usr/lib/x86_64-linux-gnu/libipset.so.13* "$root/lib/" 2>/dev/null ||
  cp -a "$work"/debroot/lib/x86_64-linux-gnu/libipset.so.13* "$root/lib/"

mkdir -p "$root/lib/python3"
cp -a "$work"/debroot/usr/lib/python3/dist-packages/yaml "$root/lib/python3/"
cp -a "$work"/debroot/usr/lib/python3/dist-packages/_yaml* "$root/lib/python3/" 2>/dev/null || true

# Images (docker-archive tarballs: `ctr images import` keeps their RepoTags as names), each with the
# build host's CA bundle where Go looks for it (upstream's images carry one: ACME, chart downloads)
image_from_scratch() { # NAME FILE... (the last file is the entrypoint, at /); $IMAGE_USER: its USER
  local name=$1; shift
  local c
  c=$(buildah from scratch)
  buildah copy "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt > /dev/null
  for f in "$@"; do buildah copy "$c" "$f" "/$(basename "$f")" > /dev/null; done
  buildah config --entrypoint "[\"/$(basename "${!#}")\"]" --cmd '[]' ${IMAGE_USER:+--user "$IMAGE_USER"} "$c"
  buildah commit -q "$c" "$name" > /dev/null
  buildah rm "$c" > /dev/null
  local file
  file=$root/images/$(echo "$name" | tr '/:' '__').tar
  buildah push -q "$name" "docker-archive:$file:$name" >&2
  buildah rmi "$name" > /dev/null
}
pause_src=$(cd "$HERE/../../k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
gcc -Os -Wall -Werror -static -DVERSION=v3.10-oforest -o "$work/pause" "$pause_src"
image_from_scratch "$PAUSE_IMAGE" "$work/pause"
image_from_scratch "$COREDNS_IMAGE" "$BIN/coredns"
image_from_scratch "$TRAEFIK_IMAGE" "$BIN/traefik"
image_from_scratch "$HOSTPATH_IMAGE" "$BIN/local-path-provisioner"
for b in controller webhook cainjector acmesolver; do # a numeric non-root USER like upstream's images:
  IMAGE_USER=1000 image_from_scratch "quay.io/jetstack/cert-manager-$b:$CERT_MANAGER_VERSION" "$BIN/cert-manager-$b"
done
# busybox with its applets linked under /bin (the helper pods run /bin/sh scripts)
mkdir -p "$work/busybox/bin"
cp "$work/debroot/bin/busybox" "$work/busybox/bin/"
for a in $("$work/busybox/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$work/busybox/bin/$a"; done
c=$(buildah from scratch)
buildah copy "$c" "$work/busybox" / > /dev/null
buildah config --cmd '["/bin/sh"]' "$c"
buildah commit -q "$c" "$BUSYBOX_IMAGE" > /dev/null
buildah rm "$c" > /dev/null
buildah push -q "$BUSYBOX_IMAGE" "docker-archive:$root/images/$(echo "$BUSYBOX_IMAGE" | tr '/:' '__').tar:$BUSYBOX_IMAGE" >&2
buildah rmi "$BUSYBOX_IMAGE" > /dev/null

# The ingress addon's chart (STAND-IN, charts/traefik) with the real CRDs it ships: Traefik's own
# (traefik.io, from the Traefik module) and Gateway API v1.4.0's standard channel (the version Traefik
# v3.6 requires, from that module); packed and indexed as a chart repository the tests can serve.
moddir() { (cd "$HERE/../../k8s/components/traefik" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'); }
traefik_mod=$(moddir github.com/traefik/traefik/v3)
gateway_mod=$(moddir "sigs.k8s.io/gateway-api@$(cd "$HERE/../../k8s/components/traefik" && go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)")
mkdir -p "$root/charts/traefik/crds"
cp "$traefik_mod/integration/fixtures/k8s/01-traefik-crd.yml" "$root/charts/traefik/crds/traefik.io.yaml"
cp "$gateway_mod"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$root/charts/traefik/crds/"
"$BIN/helm" package "$root/charts/traefik" -d "$root/charts" > /dev/null
rm -rf "$root/charts/traefik"
# cert-manager's own chart from the module whose binaries run (its Chart.yaml is a template there:
# the release tool sets version and appVersion, as `helm package` does here)
cmc_mod=$(cd "$HERE/../../k8s/components/cert-manager" && go mod download -json \
  "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$cmc_mod/deploy/charts/cert-manager" "$work/cert-manager"
chmod -R u+w "$work/cert-manager"
mv "$work/cert-manager/Chart.template.yaml" "$work/cert-manager/Chart.yaml"
"$BIN/helm" package "$work/cert-manager" --version "$CERT_MANAGER_VERSION" --app-version "$CERT_MANAGER_VERSION" \
  -d "$root/charts" > /dev/null
"$BIN/helm" repo index "$root/charts"

# cert-manager's CRDs (the version MicroK8s 1.35's addon installs), from its module (modules/go.mod)
cm_mod=$(cd "$HERE/modules" && GOFLAGS=-mod=mod go mod download -json github.com/cert-manager/cert-manager |
  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
mkdir -p "$root/addons/cert-manager-crds"
cp "$cm_mod"/deploy/crds/*.yaml "$root/addons/cert-manager-crds/"

rm -f "$out.tmp"
mksquashfs "$root" "$out.tmp" -noappend -comp lzo -all-root -quiet >&2
mv "$out.tmp" "$out"
echo "node snap packed in $(( $(date +%s) - start )) s: $(du -h "$out" | cut -f1)" >&2
echo "$out"
