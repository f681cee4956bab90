"""Make network lab-dual in the lab project, where Nova lists a new server's IPv6 address first.

Neutron gives a new port its addresses in the order of its subnets' IDs (seen on the test box: in
four dual-stack networks out of four, the address of the subnet whose ID sorts first came first), so
the IPv4 subnet is made again until its ID sorts after the IPv6 one's. On bwCloud, the dual-stack
networks behave the same way by chance. Usage: python dual_stack_network.py CLOUD
"""
import sys

import openstack

conn = openstack.connect(cloud=sys.argv[1])
net = conn.network.find_network("lab-dual") or conn.network.create_network(name="lab-dual")
subnets = {s.ip_version: s for s in conn.network.subnets(network_id=net.id)}
if 6 not in subnets:
    subnets[6] = conn.network.create_subnet(
        network_id=net.id, name="lab-dual-v6", ip_version=6, cidr="2001:db8:10::/64",
        ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful")
for _ in range(30):
    v4 = subnets.get(4)
    if v4 is not None and v4.id > subnets[6].id:
        break
    if v4 is not None:
        conn.network.delete_subnet(v4)
    subnets[4] = conn.network.create_subnet(network_id=net.id, name="lab-dual-v4", ip_version=4,
                                            cidr="203.0.113.0/24")
else:
    sys.exit("no IPv4 subnet ID sorted after the IPv6 one in 30 tries")
print("lab-dual: IPv6 subnet %s, IPv4 subnet %s" % (subnets[6].id, subnets[4].id))
