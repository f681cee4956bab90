#!/usr/bin/env bash
# Build a genuine Ubuntu systemd test-host image from the Ubuntu archive (debootstrap) and import it
# into podman as localhost/oforest/ubuntu:<version>.
#
#   tests/images/build.sh 20.04 [22.04 24.04 ...]     build (or reuse) the named images
#   FORCE=1 tests/images/build.sh 20.04               rebuild even if the cached image matches
#
# Cache: every image carries the label oforest.recipe=<sha256 of this script + release>; when an
# image with the same label exists it is reused, so an unchanged recipe is never rebuilt.
# Never substitutes another OS: if an image cannot be built, the script says which and exits 1.
set -euo pipefail

MIRROR=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
# ubuntu-keyring from the Ubuntu archive pool, pinned by checksum (it holds the 2018 archive key that
# signs focal, jammy and noble).
KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2020.02.11.2_all.deb
KEYRING_SHA256=7564f3f76fbc9f165ecc30e2cf2695d38b284e234bffa0c6441ff37f8a7aebd7
CACHE_DIR=${OFOREST_CACHE:-/var/cache/oforest-otree}
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,openssh-server,iproute2,ca-certificates,gnupg

codename() {
  case "$1" in
    20.04) echo focal ;;
    22.04) echo jammy ;;
    24.04) echo noble ;;
    *) echo "unsupported Ubuntu version '$1' (known: 20.04 22.04 24.04)" >&2; return 1 ;;
  esac
}

recipe_hash() {
  # The recipe is this script plus the release: any change to either gives a new image.
  { cat "$0"; echo "$1"; } | sha256sum | cut -c1-16
}

fetch_keyring() {
  local dir=$1 deb="$CACHE_DIR/$(basename "$KEYRING_DEB")"
  mkdir -p "$CACHE_DIR"
  if ! echo "$KEYRING_SHA256  $deb" | sha256sum -c --status 2>/dev/null; then
    curl -fsSL --retry 3 -o "$deb.part" "$MIRROR/$KEYRING_DEB"
    echo "$KEYRING_SHA256  $deb.part" | sha256sum -c --status ||
      { echo "checksum mismatch for $MIRROR/$KEYRING_DEB" >&2; return 1; }
    mv "$deb.part" "$deb"
  fi
  dpkg-deb -x "$deb" "$dir"
}

build_one() {
  local version=$1 suite hash image root keydir
  suite=$(codename "$version")
  hash=$(recipe_hash "$version")
  image="localhost/oforest/ubuntu:$version"
  if [ -z "${FORCE:-}" ] &&
     [ "$(podman image inspect --format '{{index .Labels "oforest.recipe"}}' "$image" 2>/dev/null)" = "$hash" ]; then
    echo "image $image is current (recipe $hash), not rebuilt"
    return 0
  fi
  echo "building $image (Ubuntu $version $suite, recipe $hash) from $MIRROR"
  root=$(mktemp -d /var/tmp/oforest-rootfs.XXXXXX)
  keydir=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$root' '$keydir'" RETURN
  fetch_keyring "$keydir"
  # Every Ubuntu suite script of debootstrap is the 'gutsy' one; an older debootstrap (Debian 12's)
  # lacks the newest names (noble): give it that script explicitly.
  local script=/usr/share/debootstrap/scripts/$suite
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/gutsy
  debootstrap --variant=minbase --components=main,universe --include="$PACKAGES" \
    --keyring="$keydir/usr/share/keyrings/ubuntu-archive-keyring.gpg" \
    "$suite" "$root" "$MIRROR" "$script" > "$CACHE_DIR/debootstrap-$suite.log" 2>&1 ||
    { tail -20 "$CACHE_DIR/debootstrap-$suite.log" >&2; return 1; }

  # systemd in a container: empty machine-id (generated at boot), no consoles, no udev.
  : > "$root/etc/machine-id"
  for unit in getty@tty1.service console-getty.service systemd-udevd.service \
              systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service \
              systemd-remount-fs.service sys-kernel-config.mount; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  cat > "$root/etc/apt/sources.list" <<EOF
deb $MIRROR $suite main universe
deb $MIRROR $suite-updates main universe
deb $MIRROR $suite-security main universe
EOF
  echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90oforest-norecommends"
  # As current as a cloud image: the -updates and -security pockets applied (no service starts here).
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  chroot "$root" sh -c 'apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y \
    -o Dpkg::Options::=--force-confold dist-upgrade' > "$CACHE_DIR/upgrade-$suite.log" 2>&1
  local upgraded=$?
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"
  [ "$upgraded" = 0 ] || { tail -20 "$CACHE_DIR/upgrade-$suite.log" >&2; return 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  # the lists are gone: make them look old, so "refresh when older than ..." refreshes
  touch -d @0 "$root"/var/lib/apt/lists
  tar -C "$root" -c . | podman import \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL oforest.recipe=$hash" --change "LABEL oforest.ubuntu=$version" \
    - "$image" > /dev/null
  echo "built $image"
}

[ $# -gt 0 ] || set -- 20.04
failed=()
for v in "$@"; do
  build_one "$v" || failed+=("$v")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED to build Ubuntu image(s): ${failed[*]} (no other OS is substituted)" >&2
  exit 1
fi
