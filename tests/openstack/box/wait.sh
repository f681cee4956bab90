#!/usr/bin/env bash
# Wait until every API answers with a token and the fake compute host is up (inside the box).
set -uo pipefail
. /root/admin-openrc
for _ in $(seq 150); do
  if openstack token issue -f value -c id > /dev/null 2>&1 &&
     openstack image list -f value -c ID > /dev/null 2>&1 &&
     openstack network list -f value -c ID > /dev/null 2>&1 &&
     openstack compute service list --service nova-compute -f value -c State 2>/dev/null | grep -q up &&
     openstack volume service list -f value -c Binary -c State 2>/dev/null | grep -q 'cinder-volume up' &&
     openstack network agent list -f value -c Alive 2>/dev/null | grep -qi 'true\|:-)'; then
    echo "OpenStack box: all APIs answer, compute, cinder-volume and linuxbridge agent up"; exit 0
  fi
  sleep 2
done
echo "OpenStack box: not ready after 300 s" >&2
systemctl --failed --no-legend >&2
exit 1
