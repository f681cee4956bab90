#!/usr/bin/env bash
# A REAL minimal OpenStack for the openstack_server role's tests, from Debian 12's packages
# (Zed): Keystone, Glance, Placement, Nova (API, conductor, scheduler, compute with the fake virt
# driver: no hypervisor) and Neutron (ML2/linuxbridge, security groups, routers, floating IPs),
# MariaDB, RabbitMQ, memcached, all in one privileged systemd container.
#
#   tests/openstack/build.sh          build (or reuse) localhost/oforest/openstack:zed
#   FORCE=1 tests/openstack/build.sh  rebuild even if the cached image matches
#
# The finished container is committed as an image labelled with the hash of its recipe (this
# script + tests/openstack/box/*), so a later run that finds it only starts the services
# (tests/openstack/start.sh). Cold build: ~11 min on 2 cores (mostly dpkg), ~2.5 GB.
# Endpoints are http://127.0.0.1:<port>, published on the host's loopback under the same ports, so
# the catalog is right inside the container and on the host, whatever IP the container gets.
set -euo pipefail
cd "$(dirname "$0")"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE_DIR=${OFOREST_CACHE:-/var/cache/oforest-otree}
BASE=localhost/oforest/debian-systemd:12
IMAGE=localhost/oforest/openstack:zed
BUILDER=oforest-openstack-build
mkdir -p "$CACHE_DIR"

label() { podman image inspect --format "{{index .Labels \"oforest.recipe\"}}" "$1" 2>/dev/null || true; }

# 1. Debian 12 systemd base image (debootstrap from Debian's archive, checked by its keyring)
base_hash=$( { sed -n '/^# 1\./,/^# 2\./p' build.sh; } | sha256sum | cut -c1-16)
if [ "$(label "$BASE")" != "$base_hash" ]; then
  echo "building $BASE (recipe $base_hash)"
  root=$(mktemp -d /var/tmp/oforest-debian.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --include=systemd,systemd-sysv,dbus,python3,iproute2,ca-certificates,procps,crudini,curl,bridge-utils \
    bookworm "$root" "$MIRROR" > "$CACHE_DIR/debootstrap-bookworm.log" 2>&1 ||
    { tail -20 "$CACHE_DIR/debootstrap-bookworm.log" >&2; exit 1; }
  : > "$root/etc/machine-id"
  for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udevd-control.socket \
              systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-remount-fs.service \
              sys-kernel-config.mount; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
  echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90norecommends"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL oforest.recipe=$base_hash" - "$BASE" > /dev/null
  rm -rf "$root"; trap - EXIT
fi
# 2. OpenStack on top of it

hash=$( { cat build.sh box/*; } | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] && [ "$(label "$IMAGE")" = "$hash" ]; then
  echo "image $IMAGE is current (recipe $hash), not rebuilt"; exit 0
fi
echo "building $IMAGE (recipe $hash): Debian packages + configuration, about 11 minutes cold"
start=$(date +%s)
podman rm -f "$BUILDER" > /dev/null 2>&1 || true
trap 'podman rm -f "$BUILDER" > /dev/null 2>&1 || true' EXIT
podman run -d --privileged --name "$BUILDER" --hostname osbox "$BASE" > /dev/null
for _ in $(seq 60); do
  podman exec "$BUILDER" systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded' && break
  sleep 1
done
podman exec "$BUILDER" mkdir -p /opt/osbox
podman cp box/. "$BUILDER:/opt/osbox/"
podman exec "$BUILDER" bash /opt/osbox/install.sh > "$CACHE_DIR/openstack-build.log" 2>&1 ||
  { tail -40 "$CACHE_DIR/openstack-build.log" >&2; echo "OpenStack box build FAILED (log: $CACHE_DIR/openstack-build.log)" >&2; exit 1; }
podman stop -t 60 "$BUILDER" > /dev/null
podman commit -q --change "LABEL oforest.recipe=$hash" "$BUILDER" "$IMAGE" > /dev/null
echo "built $IMAGE in $(( $(date +%s) - start )) s"
