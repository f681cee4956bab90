#!/bin/sh
# Inside the lab host container, at every boot before MicroK8s: the kubelet sets these kernel
# tunables when it starts (KernelTunableModify), and from a privileged container those writes would
# change the machine's own kernel (kernel.panic, kernel.panic_on_oops, ...). Files holding the values
# it wants are bound over them, so it reads them, finds them as wanted and writes nothing.
set -eu
mkdir -p /run/oforest-sysctl
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
          kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key=${kv%%=*}
  file=/run/oforest-sysctl/$(echo "$key" | tr / .)
  if ! mountpoint -q "/proc/sys/$key"; then
    echo "${kv#*=}" > "$file"
    mount --bind "$file" "/proc/sys/$key"
  fi
done
