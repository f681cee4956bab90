#!/usr/bin/env bash
# Start the REAL OpenStack box (built by tests/openstack/build.sh) and write a clouds.yaml for it.
#
#   tests/openstack/start.sh CLOUDS_YAML    start (or restart) it, wait for every service, write CLOUDS_YAML
#   tests/openstack/start.sh --stop         stop and remove the container
#
# clouds.yaml names two clouds: oforest-test-lab (a member of project "lab", like a bwCloud account:
# network lab-net with a router to the external network "public", image "Ubuntu 20.04", flavors
# m1.small and m1.large) and oforest-test-admin.
set -euo pipefail
NAME=oforest-openstack
IMAGE=localhost/oforest/openstack:zed
PORTS="5000 9292 8778 8774 9696 8776"
if [ "${1:-}" = --stop ]; then podman rm -f -t 30 "$NAME" > /dev/null 2>&1 || true; exit 0; fi
out=${1:?usage: start.sh CLOUDS_YAML | --stop}
start=$(date +%s)
podman rm -f -t 10 "$NAME" > /dev/null 2>&1 || true
publish=()
for p in $PORTS; do publish+=(-p "127.0.0.1:$p:$p"); done
podman run -d --privileged --name "$NAME" --hostname osbox "${publish[@]}" "$IMAGE" > /dev/null
if ! podman exec "$NAME" bash /opt/osbox/wait.sh; then
  podman exec "$NAME" journalctl --no-pager -n 60 >&2 || true
  exit 1
fi
podman exec "$NAME" sh -c 'su -s /bin/sh nova -c "nova-manage cell_v2 discover_hosts"' > /dev/null
# cinder-volume reports "up" before cinder-scheduler has its pool's capacity; until then every new
# volume fails with "No valid backend was found". Wait until a probe volume becomes available.
if ! podman exec "$NAME" bash -c '. /root/admin-openrc
  for _ in $(seq 40); do
    id=$(openstack volume create --size 1 osbox-probe -f value -c id) || exit 1
    for _ in 1 2 3 4 5; do
      st=$(openstack volume show "$id" -f value -c status); [ "$st" = creating ] || break; sleep 1
    done
    openstack volume delete "$id" > /dev/null 2>&1
    [ "$st" = available ] && exit 0
    sleep 3
  done; exit 1'; then
  echo "OpenStack box: Cinder's scheduler never found its backend" >&2; exit 1
fi
cloud() { # cloud NAME USER PASSWORD PROJECT
  cat <<YAML
  $1:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: $2
      password: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
YAML
}
umask 077
{ echo "clouds:"; cloud oforest-test-lab labuser labpass lab; cloud oforest-test-admin admin admin admin; } > "$out"
echo "OpenStack box up in $(( $(date +%s) - start )) s; clouds in $out"
