#!/bin/bash
# Run INSIDE a podman Ubuntu test host, before the microk8s role: what a cloud VM already has or what
# only a test host needs. Idempotent.
#  - snapd, iptables and python3-yaml (cloud-init's dependency), as on Ubuntu's cloud images;
#    snapd running and seeded;
#  - two stand-in prerequisite snaps snapd asks for offline: an empty base and a `snapd` snap (the
#    deb's snapd keeps running);
#  - the kernel's shared tunables: the kubelet sets vm.overcommit_memory, vm.panic_on_oom,
#    kernel.panic, kernel.panic_on_oops and kernel.keys.root_max* at start (KernelTunableModify,
#    pkg/kubelet/cm/container_manager_linux.go). In a container those writes would change the CI
#    machine's kernel, so files holding the values it wants are bound over them here: it reads
#    them, finds them as wanted, and writes nothing. A real VM does not need this.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v snap > /dev/null || ! command -v iptables > /dev/null || ! python3 -c 'import yaml' 2> /dev/null; then
  apt-get update -qq
  apt-get install -y -qq snapd squashfs-tools iptables python3-yaml > /dev/null
fi
systemctl start snapd.socket snapd.service
snap wait system seed.loaded

mkdir -p /run/oforest-sysctl
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
          kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key=${kv%%=*}; file=/run/oforest-sysctl/${key//\//.}
  if ! mountpoint -q "/proc/sys/$key"; then
    echo "${kv#*=}" > "$file"
    mount --bind "$file" "/proc/sys/$key"
  fi
done

dir=/root/standin-prereqs
mkdir -p "$dir"/base/meta "$dir"/snapd/meta "$dir"/snapd/usr/lib/snapd
cd "$dir"
printf 'name: oforest-standin-base\nversion: "1"\ntype: base\nsummary: STAND-IN base (tests only)\ndescription: An empty base for the classic stand-in snap\n' > base/meta/snap.yaml
printf 'name: snapd\nversion: 2.67.1-standin\ntype: snapd\nsummary: STAND-IN snapd snap (tests only)\ndescription: Satisfies the offline prerequisite check\n' > snapd/meta/snap.yaml
for d in bin etc usr lib var tmp dev proc sys run home root snap media mnt opt srv boot writable; do mkdir -p "base/$d"; done
[ -f oforest-standin-base_1_all.snap ] || snap pack base . > /dev/null
[ -f snapd_2.67.1-standin_all.snap ] || snap pack snapd . > /dev/null
# the first install of the snapd snap fails to reload udev rules (no udev in the container); again works
for _ in 1 2 3 4; do
  snap list oforest-standin-base > /dev/null 2>&1 || snap install --dangerous oforest-standin-base_1_all.snap > /dev/null 2>&1 || true
  snap list snapd > /dev/null 2>&1 || snap install --dangerous snapd_2.67.1-standin_all.snap > /dev/null 2>&1 || true
  if snap list oforest-standin-base > /dev/null 2>&1 && snap list snapd > /dev/null 2>&1; then break; fi
  sleep 3; snap wait system seed.loaded
done
snap list oforest-standin-base > /dev/null && snap list snapd > /dev/null
echo "test host ready for the microk8s snap"
