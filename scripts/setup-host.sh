#!/usr/bin/env bash
# Prepare this machine (Debian 12, root) for the test suite: system packages for rootful podman with
# systemd containers, debootstrap for the test images, and the podman configuration they need.
# Idempotent: installs only what is missing, rewrites the podman config only if it differs.
set -euo pipefail

PACKAGES=(podman runc iptables nftables netavark aardvark-dns buildah debootstrap uidmap
          slirp4netns fuse-overlayfs curl rsync git make python3-venv
          postgresql chromium libnss3-tools  # oTree runtime + HTTPS bots: PostgreSQL, Chromium, its NSS db
          gcc libc6-dev squashfs-tools  # the node snap: pause built static, the snap packed
          sudo)  # the local lab host: a non-root user starts its root podman container through sudo

if [ "$(id -u)" != 0 ]; then
  echo "scripts/setup-host.sh must run as root (it installs packages and writes /etc/containers)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
else
  echo "system packages present"
fi

# runc: crun refuses this machine's cgroup hybrid layout. The ulimits: the VM cannot raise limits
# above these, and podman's defaults ask for more.
conf=/etc/containers/containers.conf
want='# managed by oforest.otree (scripts/setup-host.sh)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"'
mkdir -p /etc/containers
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  [ -f "$conf" ] && ! grep -q 'managed by oforest.otree' "$conf" && cp "$conf" "$conf.before-oforest"
  printf '%s\n' "$want" > "$conf"
  echo "wrote $conf"
fi

# The Kubernetes components are built from Go modules (tests/k8s/build.sh). sudo's PATH lacks go.dev's
# install folder, where a user's Go often is.
if ! command -v go > /dev/null && ! [ -x /usr/local/go/bin/go ]; then
  echo "Go is needed to build the Kubernetes test components: apt-get install golang-go (1.25 or newer)" >&2
  exit 1
fi

# A podman that cannot start a container fails every later stage with an obscure error: say so now.
if ! podman info --format '{{.Host.OCIRuntime.Name}}' > /dev/null 2>&1; then
  echo "podman is installed but does not work: run 'podman info' to see why" >&2
  exit 1
fi
echo "podman $(podman version --format '{{.Client.Version}}') with runtime $(podman info --format '{{.Host.OCIRuntime.Name}}')"
