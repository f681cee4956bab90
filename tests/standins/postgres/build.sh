#!/usr/bin/env bash
# STAND-IN for the official image docker.io/library/postgres:16 (Docker Hub cannot be reached here):
# PostgreSQL 16 from the Ubuntu 24.04 archive (the release that ships 16, our manifests' default),
# user postgres with uid/gid 999 as in the official image, and our entrypoint
# (docker-entrypoint.sh) honouring the image's documented contract. Tagged with the name the
# manifests use so that a node or podman runs it where the real image would be pulled.
#   tests/standins/postgres/build.sh            build (or reuse) it; prints the image name
# Cached: the image carries the label oforest.recipe=<hash of this folder and the base image>.
set -euo pipefail
cd "$(dirname "$0")"
PG_MAJOR=16
IMAGE=docker.io/library/postgres:$PG_MAJOR
BASE=localhost/oforest/ubuntu:24.04
../../images/build.sh 24.04 >&2
hash=$( { cat build.sh docker-entrypoint.sh; podman image inspect --format '{{.Id}}' "$BASE"; } | sha256sum | cut -c1-16)
if [ "$(podman image inspect --format '{{index .Labels "oforest.recipe"}}' "$IMAGE" 2> /dev/null)" = "$hash" ]; then
  echo "$IMAGE"; exit 0
fi
c=$(buildah from "$BASE")
trap 'buildah rm "$c" > /dev/null 2>&1 || true' EXIT
buildah run --network host "$c" -- sh -e -c "
  # uid/gid 999 as in the official image: a system account holding them here is renumbered
  g=\$(getent group 999 | cut -d: -f1); [ -z \"\$g\" ] || groupmod -g 989 \"\$g\"
  u=\$(getent passwd 999 | cut -d: -f1); [ -z \"\$u\" ] || usermod -u 989 \"\$u\"
  groupadd -r -g 999 postgres
  useradd -r -u 999 -g 999 -d /var/lib/postgresql -s /bin/sh postgres
  apt-get -q update > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends postgresql-common > /dev/null
  sed -i 's/^#\\?create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends postgresql-$PG_MAJOR > /dev/null
  apt-get clean; rm -rf /var/lib/apt/lists/*
  mkdir -p /var/lib/postgresql/data /var/run/postgresql
  chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
  chmod 0700 /var/lib/postgresql/data" >&2
buildah copy --chmod 0755 "$c" docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh > /dev/null
buildah config --env "PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --env PGDATA=/var/lib/postgresql/data --env PG_MAJOR=$PG_MAJOR \
  --entrypoint '["docker-entrypoint.sh"]' --cmd '["postgres"]' --stop-signal SIGINT --port 5432 \
  --label "oforest.recipe=$hash" --label "oforest.standin=docker.io/library/postgres:$PG_MAJOR (tests/standins/postgres)" \
  "$c"
buildah commit -q "$c" "$IMAGE" > /dev/null
echo "built $IMAGE (stand-in)" >&2
echo "$IMAGE"
