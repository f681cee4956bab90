#!/usr/bin/env python3
"""Benchmark: the stock Ubuntu image vs the same image after the harden role (one run, one fresh
container each time, podman connection).

Prints Lynis' hardening index (Debian's Lynis 3.0.8), ssh-audit's failures and warnings (PyPI),
the converge time, the idempotent re-run time and its changed count, and ratios against the
dev-sec hardening collection's numbers as issue 7 reports them (measured on the same kind of
container here earlier). dev-sec is NOT run here: the `ansible` package no longer bundles
devsec.hardening and Galaxy/GitHub are not reachable, so its column is quoted, not measured.

    tests/ci.sh venv   # once
    .venv-path/bin/python benchmarks/harden_bench.py [--ubuntu 20.04]
In a container the kernel.* / fs.* / dev.* sysctls are the CI machine's (the role writes them but
does not apply them), which costs Lynis points a real VM would get.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("OFOREST_CACHE", "/var/cache/oforest-otree"))
NAME, NET = "oforest-bench-harden", "oforest-bench"
DEVSEC = {"lynis": 75, "ssh_fail": 2, "ssh_warn": 7, "converge": 9 * 60 + 5, "rerun": 6 * 60 + 14, "changed": 1}

PLAYBOOK = """
- name: Harden
  hosts: all
  gather_facts: true
  roles:
    - role: oforest.otree.harden
      vars:
        harden_admin_users:
          - name: labadmin
            keys: ["{{ lookup('ansible.builtin.file', '%s') }}"]
"""


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def start(image):
    sh("podman", "rm", "-f", NAME, check=False)
    if sh("podman", "network", "exists", NET, check=False).returncode:
        sh("podman", "network", "create", NET)
    sh("podman", "run", "-d", "--name", NAME, "--privileged", "--systemd=always", "--network", NET, image,
       "/sbin/init")
    for _ in range(60):
        if sh("podman", "exec", NAME, "systemctl", "is-system-running", check=False).stdout.strip() in (
                "running", "degraded"):
            break
        time.sleep(1)
    # the stock image's sshd, as a cloud image has it
    sh("podman", "exec", NAME, "systemctl", "enable", "--now", "ssh")


def lynis():
    debs = sorted((CACHE / "debs").glob("lynis_3.0.8*_all.deb"))
    if not debs:
        (CACHE / "debs").mkdir(parents=True, exist_ok=True)
        sh("apt-get", "download", "lynis", cwd=str(CACHE / "debs"))
        debs = sorted((CACHE / "debs").glob("lynis_3.0.8*_all.deb"))
    sh("podman", "cp", str(debs[-1]), NAME + ":/tmp/lynis.deb")
    sh("podman", "exec", NAME, "sh", "-c", "dpkg -i /tmp/lynis.deb >/dev/null && "
       "lynis audit system --quick --no-colors >/tmp/lynis.out 2>&1")
    report = sh("podman", "exec", NAME, "cat", "/var/log/lynis-report.dat").stdout
    return int(re.search(r"^hardening_index=(\d+)", report, re.M).group(1))


def ssh_audit():
    """ssh-audit from the controller. --skip-rate-test: its 38 rapid connections meet the hardened
    host's ufw rate limit (the DHEat defence); fail2ban is told to let the controller through."""
    venv = sh(str(ROOT / "scripts" / "aux-venv.sh"), "tests/harden/requirements-audit.txt", cwd=str(ROOT)).stdout
    ip = sh("podman", "exec", NAME, "hostname", "-I").stdout.split()[0]
    gateway = sh("podman", "exec", NAME, "sh", "-c", "ip route show default | cut -d' ' -f3").stdout.strip()
    sh("podman", "exec", NAME, "sh", "-c", "command -v fail2ban-client >/dev/null || exit 0; "
       "fail2ban-client unban --all; fail2ban-client set sshd addignoreip %s" % gateway, check=False)
    time.sleep(31)  # ufw's limit window (6 new connections in 30 s) is empty again
    out = sh(venv.strip().splitlines()[-1] + "/bin/ssh-audit", "-n", "--skip-rate-test", ip, check=False).stdout
    if "(kex)" not in out:
        sys.exit("ssh-audit did not audit %s:\n%s" % (ip, out[-2000:]))
    fails = [line for line in out.splitlines() if re.search(r"\(fail\)|\[fail\]", line)]
    warns = [line for line in out.splitlines() if re.search(r"\(warn\)|\[warn\]", line)]
    return len(fails), len(warns)


def play(playbook, env):
    t = time.monotonic()
    out = subprocess.run(["ansible-playbook", "-i", NAME + ",", "-c", "containers.podman.podman", playbook],
                         capture_output=True, text=True, env=env)
    secs = time.monotonic() - t
    if out.returncode:
        sys.exit("ansible-playbook failed:\n" + out.stdout[-3000:] + out.stderr[-2000:])
    changed = int(re.search(r"changed=(\d+)", out.stdout).group(1))
    return secs, changed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ubuntu", default="20.04")
    args = ap.parse_args()
    image = "localhost/oforest/ubuntu:" + args.ubuntu
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_HOST_KEY_CHECKING="false")
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "id"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        pb = Path(tmp) / "harden.yml"
        pb.write_text(PLAYBOOK % (str(key) + ".pub"))
        try:
            start(image)
            stock = {"lynis": lynis()}
            stock["ssh_fail"], stock["ssh_warn"] = ssh_audit()
            start(image)  # a fresh container: Lynis' own package out of the way
            ours = {}
            ours["converge"], _ = play(str(pb), env)
            ours["rerun"], ours["changed"] = play(str(pb), env)
            ours["lynis"] = lynis()
            ours["ssh_fail"], ours["ssh_warn"] = ssh_audit()
        finally:
            sh("podman", "rm", "-f", NAME, check=False)

    print("\nUbuntu %s, podman connection, one run each (this machine: %d cores)" % (args.ubuntu, os.cpu_count()))
    print("%-32s %10s %10s %16s %14s" % ("", "stock", "harden", "dev-sec (quoted)", "harden/dev-sec"))
    rows = [("Lynis 3.0.8 hardening index", "lynis", "%d"), ("ssh-audit failures", "ssh_fail", "%d"),
            ("ssh-audit warnings", "ssh_warn", "%d"), ("converge (s)", "converge", "%.0f"),
            ("idempotent re-run (s)", "rerun", "%.0f"), ("re-run changed", "changed", "%d")]
    for label, key, fmt in rows:
        s = fmt % stock[key] if key in stock else "-"
        ratio = "%.2f" % (ours[key] / DEVSEC[key]) if DEVSEC[key] else "-"
        print("%-32s %10s %10s %16s %14s" % (label, s, fmt % ours[key], fmt % DEVSEC[key], ratio))


if __name__ == "__main__":
    main()
