#!/usr/bin/env bash
# A local stand-in for the pinned python:3.11-slim base image (no container registry is reachable
# here): Debian 12's Python 3.11 in a venv on PATH, built with buildah from our Debian 12 image.
# Cached by recipe hash.
set -euo pipefail
IMAGE=localhost/oforest/python-base:3.11-bookworm
hash=$(sha256sum "$0" | cut -c1-16)
[ "$(podman image inspect --format '{{index .Labels "oforest.recipe"}}' "$IMAGE" 2>/dev/null)" = "$hash" ] && exit 0
# (localhost/oforest/debian-systemd:12 comes from tests/openstack/build.sh, the openstack-image stage)
ctr=$(buildah from localhost/oforest/debian-systemd:12)
trap 'buildah rm "$ctr" > /dev/null 2>&1 || true' EXIT
buildah run "$ctr" -- sh -c 'apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends python3-venv && apt-get clean && python3 -m venv /usr/local/py' > /dev/null
# This machine reaches PyPI through a proxy whose CA only the host's bundle holds: give it to pip.
buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/host-ca-bundle.crt > /dev/null
buildah config --env PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt \
  --env PATH=/usr/local/py/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd '["python3"]' --label "oforest.recipe=$hash" "$ctr"
buildah commit -q "$ctr" "$IMAGE" > /dev/null
echo "built $IMAGE"
