#!/usr/bin/env bash
# Runs inside the build container (Debian 12, systemd): installs and configures the OpenStack box.
# Facts behind each step: ../shared/OPENSTACK.md (a run that worked on our machines).
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
PW=service              # every service user's password (a throw-away test cloud)
KS=http://127.0.0.1:5000
DB() { echo "mysql+pymysql://os:os@127.0.0.1/$1"; }

apt-get -q update
# no service starts from a postinst (each would start 8-16 uwsgi workers on our 2 cores)
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
apt-get -q install -y --no-install-recommends mariadb-server python3-pymysql rabbitmq-server memcached python3-memcache
apt-get -q install -y --no-install-recommends keystone python3-openstackclient
apt-get -q install -y --no-install-recommends glance placement-api nova-api nova-conductor nova-scheduler \
  neutron-server neutron-linuxbridge-agent
apt-get -q install -y --no-install-recommends cinder-api cinder-scheduler cinder-volume
rm -f /usr/sbin/policy-rc.d
systemctl disable nova-api-metadata 2>/dev/null || true
systemctl start mariadb rabbitmq-server memcached

# Small worker counts for 2 cores
for f in /etc/neutron/neutron-api-uwsgi.ini /etc/placement/placement-api-uwsgi.ini /etc/glance/glance-api-uwsgi.ini \
         /etc/cinder/cinder-api-uwsgi.ini; do
  [ -f "$f" ] && sed -i -E 's/^processes = [0-9]+/processes = 1/; s/^threads = [0-9]+/threads = 4/' "$f"
done
sed -i -E 's/^processes = [0-9]+/processes = 2/; s/^threads = [0-9]+/threads = 1/' /etc/nova/nova-api-uwsgi.ini
sed -i -E 's/^processes = [0-9]+/processes = 2/; s/^threads = [0-9]+/threads = 8/' /etc/keystone/keystone-uwsgi.ini

for db in keystone glance placement nova_api nova nova_cell0 neutron cinder; do
  mysql -e "CREATE DATABASE IF NOT EXISTS $db"
done
mysql -e "CREATE USER IF NOT EXISTS 'os'@'127.0.0.1' IDENTIFIED BY 'os'; CREATE USER IF NOT EXISTS 'os'@'localhost' IDENTIFIED BY 'os';
          GRANT ALL ON *.* TO 'os'@'127.0.0.1'; GRANT ALL ON *.* TO 'os'@'localhost'; FLUSH PRIVILEGES"

authtoken() { # authtoken FILE USER: keystonemiddleware + the matching service credentials
  crudini --set "$1" keystone_authtoken www_authenticate_uri "$KS"
  crudini --set "$1" keystone_authtoken auth_url "$KS"
  crudini --set "$1" keystone_authtoken memcached_servers 127.0.0.1:11211
  crudini --set "$1" keystone_authtoken auth_type password
  crudini --set "$1" keystone_authtoken project_domain_name Default
  crudini --set "$1" keystone_authtoken user_domain_name Default
  crudini --set "$1" keystone_authtoken project_name service
  crudini --set "$1" keystone_authtoken username "$2"
  crudini --set "$1" keystone_authtoken password "$PW"
  crudini --set "$1" keystone_authtoken region_name RegionOne
}
svcauth() { # svcauth FILE SECTION USER
  for kv in "auth_url=$KS/v3" auth_type=password project_domain_name=Default user_domain_name=Default \
            project_name=service region_name=RegionOne "username=$3" "password=$PW"; do
    crudini --set "$1" "$2" "${kv%%=*}" "${kv#*=}"
  done
}

# --- Keystone
C=/etc/keystone/keystone.conf
crudini --set $C database connection "$(DB keystone)"
crudini --set $C token provider fernet
crudini --set $C cache enabled true
crudini --set $C cache backend dogpile.cache.memcached
crudini --set $C cache memcache_servers 127.0.0.1:11211
su -s /bin/sh keystone -c "keystone-manage db_sync"
keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
keystone-manage bootstrap --bootstrap-password admin --bootstrap-admin-url "$KS/v3/" \
  --bootstrap-internal-url "$KS/v3/" --bootstrap-public-url "$KS/v3/" --bootstrap-region-id RegionOne
systemctl enable keystone; systemctl restart keystone
cat > /root/admin-openrc <<RC
export OS_AUTH_URL=$KS/v3 OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin OS_PASSWORD=admin OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne
RC
# shellcheck disable=SC1091
. /root/admin-openrc
for _ in $(seq 60); do openstack token issue -f value -c id > /dev/null 2>&1 && break; sleep 2; done

openstack project show service > /dev/null 2>&1 || openstack project create --domain default service
# the role "service": nova's service token must carry it, or cinder refuses nova's detaches with
# 409 ConflictNovaUsingAttachment (the CVE-2023-2088 fix checks service_token_roles)
openstack role show service > /dev/null 2>&1 || openstack role create service
for svc in glance:image:9292: placement:placement:8778: nova:compute:8774:/v2.1 neutron:network:9696: 'cinder:volumev3:8776:/v3/%(project_id)s'; do
  IFS=: read -r user type port path <<< "$svc"
  openstack user show "$user" > /dev/null 2>&1 || openstack user create --domain default --password "$PW" "$user"
  openstack role add --project service --user "$user" admin
  openstack role add --project service --user "$user" service
  openstack service create --name "$user" "$type"
  for iface in public internal admin; do
    openstack endpoint create --region RegionOne "$type" "$iface" "http://127.0.0.1:$port$path"
  done
done

# --- Glance
C=/etc/glance/glance-api.conf
crudini --set $C database connection "$(DB glance)"
authtoken $C glance
crudini --set $C paste_deploy flavor keystone
crudini --set $C DEFAULT enabled_backends fs:file
crudini --set $C glance_store default_backend fs
crudini --set $C fs filesystem_store_datadir /var/lib/glance/images/
su -s /bin/sh glance -c "glance-manage db_sync"

# --- Placement
C=/etc/placement/placement.conf
crudini --set $C placement_database connection "$(DB placement)"
crudini --set $C api auth_strategy keystone
authtoken $C placement
su -s /bin/sh placement -c "placement-manage db sync"

# --- Nova (fake virt driver: servers go ACTIVE without a hypervisor)
C=/etc/nova/nova.conf
crudini --set $C DEFAULT transport_url rabbit://guest:guest@127.0.0.1:5672/
crudini --set $C DEFAULT enabled_apis osapi_compute
crudini --set $C DEFAULT compute_driver fake.FakeDriver
crudini --set $C DEFAULT my_ip 127.0.0.1
crudini --set $C DEFAULT host osbox
crudini --set $C api_database connection "$(DB nova_api)"
crudini --set $C database connection "$(DB nova)"
crudini --set $C api auth_strategy keystone
authtoken $C nova
svcauth $C service_user nova
crudini --set $C service_user send_service_user_token true
svcauth $C placement placement
svcauth $C neutron neutron
crudini --set $C glance api_servers http://127.0.0.1:9292
crudini --set $C vnc enabled false
crudini --set $C oslo_concurrency lock_path /var/lib/nova/tmp
crudini --set $C conductor workers 1
crudini --set $C scheduler workers 1
crudini --set $C scheduler discover_hosts_in_cells_interval 30
su -s /bin/sh nova -c "nova-manage api_db sync"
su -s /bin/sh nova -c "nova-manage cell_v2 map_cell0"
su -s /bin/sh nova -c "nova-manage cell_v2 list_cells" | grep -q cell1 || su -s /bin/sh nova -c "nova-manage cell_v2 create_cell --name=cell1"
su -s /bin/sh nova -c "nova-manage db sync"
install -m 644 /opt/osbox/nova-compute-fake.service /etc/systemd/system/

# --- Neutron (ML2/linuxbridge; no L3/DHCP agent)
C=/etc/neutron/neutron.conf
crudini --set $C DEFAULT core_plugin ml2
crudini --set $C DEFAULT service_plugins router
crudini --set $C DEFAULT transport_url rabbit://guest:guest@127.0.0.1:5672/
crudini --set $C DEFAULT auth_strategy keystone
crudini --set $C DEFAULT notify_nova_on_port_status_changes true
crudini --set $C DEFAULT notify_nova_on_port_data_changes true
crudini --set $C DEFAULT api_workers 1
crudini --set $C DEFAULT rpc_workers 1
crudini --set $C database connection "$(DB neutron)"
authtoken $C neutron
svcauth $C nova nova
crudini --set $C oslo_concurrency lock_path /var/lib/neutron/tmp
crudini --set $C experimental linuxbridge true
C=/etc/neutron/plugins/ml2/ml2_conf.ini
crudini --set $C ml2 type_drivers flat,vlan
crudini --set $C ml2 tenant_network_types vlan
crudini --set $C ml2 mechanism_drivers linuxbridge
crudini --set $C ml2 extension_drivers port_security
crudini --set $C ml2_type_flat flat_networks public
crudini --set $C ml2_type_vlan network_vlan_ranges private:100:200
C=/etc/neutron/plugins/ml2/linuxbridge_agent.ini
crudini --set $C linux_bridge bridge_mappings public:br-ex,private:br-priv
crudini --set $C vxlan enable_vxlan false
crudini --set $C securitygroup firewall_driver noop
su -s /bin/sh neutron -c "neutron-db-manage --config-file /etc/neutron/neutron.conf \
  --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade head"

# --- Cinder with the fake volume driver of cinder's own functional tests (volumes are records,
# attachments go through the real attachment API; no LVM or iSCSI is touched)
C=/etc/cinder/cinder.conf
crudini --set $C DEFAULT transport_url rabbit://guest:guest@127.0.0.1:5672/
crudini --set $C DEFAULT auth_strategy keystone
crudini --set $C DEFAULT my_ip 127.0.0.1
crudini --set $C DEFAULT host osbox
crudini --set $C DEFAULT enabled_backends fake
crudini --set $C DEFAULT default_volume_type fake
crudini --set $C DEFAULT glance_api_servers http://127.0.0.1:9292
crudini --set $C DEFAULT osapi_volume_workers 1
crudini --set $C database connection "$(DB cinder)"
authtoken $C cinder
crudini --set $C keystone_authtoken service_token_roles service
crudini --set $C keystone_authtoken service_token_roles_required true
crudini --set $C oslo_concurrency lock_path /var/lib/cinder/tmp
crudini --set $C fake volume_driver cinder.tests.fake_driver.FakeLoggingVolumeDriver
crudini --set $C fake volume_backend_name fake
crudini --set /etc/nova/nova.conf cinder os_region_name RegionOne
su -s /bin/sh cinder -c "cinder-manage db sync"

# --- Boot: bridges before the agent, then every service
install -m 755 /opt/osbox/osbox-net /usr/local/sbin/osbox-net
install -m 644 /opt/osbox/osbox-net.service /etc/systemd/system/
systemctl daemon-reload
SERVICES="osbox-net keystone glance-api placement-api nova-api nova-conductor nova-scheduler nova-compute-fake
          neutron-api neutron-rpc-server neutron-linuxbridge-agent cinder-api cinder-scheduler cinder-volume"
for s in $SERVICES; do
  systemctl cat "$s" > /dev/null 2>&1 || { echo "no unit $s (skipped)"; continue; }
  systemctl enable "$s"; systemctl restart "$s"
done
bash /opt/osbox/wait.sh
su -s /bin/sh nova -c "nova-manage cell_v2 discover_hosts --verbose"

# --- What a lab's project has before our role runs: an image, flavors, a network with a router
# to the external network (where floating IPs come from). The image is 1 MiB of zeros (the fake
# driver never boots it) under the name the role looks for by default.
openstack flavor show m1.small > /dev/null 2>&1 || openstack flavor create --ram 2048 --disk 20 --vcpus 1 m1.small
openstack flavor show m1.large > /dev/null 2>&1 || openstack flavor create --ram 8192 --disk 40 --vcpus 4 m1.large
if ! openstack image show "Ubuntu 20.04" > /dev/null 2>&1; then
  head -c 1048576 /dev/zero > /tmp/zero.img
  openstack image create --public --disk-format raw --container-format bare --file /tmp/zero.img "Ubuntu 20.04"
fi
openstack network show public > /dev/null 2>&1 || openstack network create --external --share \
  --provider-network-type flat --provider-physical-network public public
openstack subnet show public-subnet > /dev/null 2>&1 || openstack subnet create --network public \
  --subnet-range 172.24.4.0/24 --gateway 172.24.4.1 --no-dhcp public-subnet
openstack network show private > /dev/null 2>&1 || openstack network create private
openstack subnet show private-subnet > /dev/null 2>&1 || openstack subnet create --network private \
  --subnet-range 10.0.0.0/24 private-subnet
if ! openstack router show router1 > /dev/null 2>&1; then
  openstack router create router1
  openstack router set --external-gateway public router1
  openstack router add subnet router1 private-subnet
fi
openstack volume type show fake > /dev/null 2>&1 || openstack volume type create --public \
  --property volume_backend_name=fake fake
# a lab user: member (not admin) of its own project, like a bwCloud account
openstack project show lab > /dev/null 2>&1 || openstack project create --domain default lab
openstack user show labuser > /dev/null 2>&1 || openstack user create --domain default --password labpass labuser
openstack role add --project lab --user labuser member
# the lab's network is its own project's, with a router to the shared external network
openstack network show lab-net > /dev/null 2>&1 || openstack network create --project lab lab-net
openstack subnet show lab-subnet > /dev/null 2>&1 || openstack subnet create --project lab --network lab-net \
  --subnet-range 10.1.0.0/24 lab-subnet
if ! openstack router show lab-router > /dev/null 2>&1; then
  openstack router create --project lab lab-router
  openstack router set --external-gateway public lab-router
  openstack router add subnet lab-router lab-subnet
fi
# a smoke test: the server goes ACTIVE on the fake driver
openstack server create --flavor m1.small --image "Ubuntu 20.04" --network private --wait smoke
openstack server show smoke -f value -c status | grep -qx ACTIVE
openstack volume create --size 1 smoke-vol
for _ in $(seq 30); do [ "$(openstack volume show smoke-vol -f value -c status)" = available ] && break; sleep 2; done
openstack server add volume smoke smoke-vol
for _ in $(seq 30); do [ "$(openstack volume show smoke-vol -f value -c status)" = in-use ] && break; sleep 2; done
openstack volume show smoke-vol -f value -c status | grep -qx in-use
openstack server remove volume smoke smoke-vol
for _ in $(seq 30); do [ "$(openstack volume show smoke-vol -f value -c status)" = available ] && break; sleep 2; done
openstack volume show smoke-vol -f value -c status | grep -qx available
# (nova-api has reset a connection here once: retry the delete)
for _ in 1 2 3; do openstack server delete --wait smoke && break; sleep 5; done
if openstack server show smoke > /dev/null 2>&1; then echo "smoke server not deleted" >&2; exit 1; fi
openstack volume delete smoke-vol
apt-get clean
echo "OpenStack box ready"
