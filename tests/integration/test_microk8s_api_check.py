"""The microk8s role's check that the controller reaches the API server of the kubeconfig it fetched
(roles/microk8s/tasks/api_reachable.yml), run by ansible-playbook on the controller: a name without a
DNS record and a port nobody admits are each refused at once with what to do; a listening server
passes. (On the real node the same check runs in the microk8s and site scenarios.)"""
from __future__ import annotations

import json
import socket

import pytest

from .playbook import ansible_playbook

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The check
      ansible.builtin.include_role:
        name: oforest.otree.microk8s
        tasks_from: api_reachable.yml
"""


def run_check(tmp_path, server, *extra):
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [
        {"name": "microk8s-cluster", "cluster": {"server": server}}]}))
    proc = ansible_playbook(tmp_path, PLAYBOOK, "-e", json.dumps({
        "microk8s_kubeconfig_dest": str(kubeconfig), "microk8s_api_check_timeout": 2,
        "ansible_host": "192.0.2.10"}), *extra)
    return proc, proc.stdout + proc.stderr


def test_a_name_without_dns_record_is_named_with_the_record_to_add(tmp_path):
    proc, out = run_check(tmp_path, "https://k8s.lab-without-record.invalid:16443")
    assert proc.returncode != 0, out
    assert "k8s.lab-without-record.invalid" in out and "does not resolve on the controller" in out, out
    assert "an A record to 192.0.2.10" in out, out


def test_a_port_nobody_admits_names_the_admin_networks(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, out = run_check(tmp_path, "https://127.0.0.1:%d" % port)
    assert proc.returncode != 0, out
    assert "does not answer the controller within 2 s" in out and "harden_api_admin_networks" in out, out


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check-mode"])
def test_a_listening_server_passes(tmp_path, host, mode):
    # --check too: a lab's dry run on an installed cluster has the kubeconfig (the probe only reads)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        proc, out = run_check(tmp_path, "https://%s:%d" % (host, s.getsockname()[1]), *mode)
    assert proc.returncode == 0, out
