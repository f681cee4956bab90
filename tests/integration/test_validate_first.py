"""The otree_experiment role refuses a bad experiment entry before it contacts the cluster: its
kubeconfig points at a listener that counts connections, and every typical mistake ends the run
naming the field, with no connection and no traceback. A good entry, as the control, does connect."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from .playbook import ansible_playbook

GOOD = {"name": "pgg", "host": "pgg.experiments.example.org", "image": "registry.example.org/lab/pgg:1.0.0"}
SECOND = dict(GOOD, name="trust", host="trust.experiments.example.org")

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: oforest.otree.otree_experiment
      vars:
        otree_experiment_kubeconfig: "{{ kubeconfig }}"
        otree_experiment_ingress_class: traefik
"""


class CountingListener:
    """A TCP port that accepts and counts connections (and closes them: no API server behind)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


@pytest.fixture(scope="module")
def listener():
    lis = CountingListener()
    yield lis
    lis.sock.close()


def write_kubeconfig(tmp_path, listener):
    """A kubeconfig whose API server is the counting listener."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:%d" % listener.port,
                                                 "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}]}))
    return kubeconfig


def run_role(tmp_path, listener, experiments):
    kubeconfig = write_kubeconfig(tmp_path, listener)
    before = listener.count
    proc = ansible_playbook(tmp_path, PLAYBOOK, "-e", json.dumps(
        {"kubeconfig": str(kubeconfig), "otree_experiment_experiments": experiments}))
    return proc, proc.stdout + proc.stderr, listener.count - before


# What the role's argument spec (written from the experiment schema) refuses: Ansible's own check of
# types, choices and nested fields, before the first task; it names the field and the variable.
@pytest.mark.parametrize("experiments, says", [
    ([dict(GOOD, postgres="17")], ["'postgres'", "otree_experiment_experiments", "unable to convert to dict"]),
    ([dict(GOOD, postgres={"verison": 17})], ["otree_experiment_experiments.postgres.verison",
                                               "Supported parameters include", "version"]),
    ([dict(GOOD, websocket_timeout="an hour")], ["'websocket_timeout'", "cannot be converted to an int"]),
    ([dict(GOOD, replicas=2)], ["value of replicas must be one of: 0, 1, got: 2"]),
    ([dict(GOOD, auth_level="study")], ["value of auth_level must be one of: STUDY, DEMO"]),
    ([dict(GOOD, image_pull_secret={"registry": "registry.example.org", "username": "deploy"})],
     ["missing required arguments: password", "image_pull_secret"]),
])
def test_a_wrong_type_is_refused_by_the_argument_spec(tmp_path, listener, experiments, says):
    proc, out, connections = run_role(tmp_path, listener, experiments)
    assert proc.returncode != 0, out
    assert "Validation of arguments failed" in out, out
    assert all(text in out for text in says), out
    assert "Traceback" not in out, out
    assert connections == 0, "%d connection(s) before the mistake was reported" % connections


# What only the renderer can say (FQDN, pinned image, quantities above zero, reserved and unique
# names): the first task, before the cluster is read; the message names experiments[<name>].<field>.
@pytest.mark.parametrize("experiments, field, says", [
    ([dict(GOOD, name="Public-Goods")], "experiments[Public-Goods].name", "lowercase"),
    ([dict(GOOD, host="pgg")], "experiments[pgg].host", "fully qualified domain name"),
    ([dict(GOOD, image="registry.example.org/lab/pgg")], "experiments[pgg].image", "has no tag"),
    ([dict(GOOD, admin_password="pw-4711")], "experiments[pgg].admin_password", "too short"),
    ([dict(GOOD, resources={"limits": {"memory": "lots"}})], "experiments[pgg].resources.limits.memory", "quantity"),
    ([dict(GOOD, postgres={"storage_size": "0Gi"})], "experiments[pgg].postgres.storage_size", "more than zero"),
    ([dict(GOOD, postgres={"version": 12})], "experiments[pgg].postgres.version", "from 13 to 18"),
    ([dict(GOOD, run_as_user=0)], "experiments[pgg].run_as_user", "non-root numeric user id"),
    ([dict(GOOD, websocket_timeout=5)], "experiments[pgg].websocket_timeout", "at least 60"),
    ([dict(GOOD, namespace="kube-system")], "experiments[pgg].namespace", "reserved"),
    ([GOOD, dict(SECOND, host=GOOD["host"])], "experiments[trust].host", "already used by experiment pgg"),
    ([GOOD, dict(SECOND, namespace="otree-pgg")], "experiments[trust].namespace", "already used by experiment pgg"),
])
def test_a_mistake_is_named_before_the_cluster_is_contacted(tmp_path, listener, experiments, field, says):
    proc, out, connections = run_role(tmp_path, listener, experiments)
    assert proc.returncode != 0, out
    assert field + ":" in out and says in out, out
    assert "Traceback" not in out, out
    assert connections == 0, "%d connection(s) before the mistake was reported" % connections
    assert "pw-4711" not in out  # a given password, even a bad one, is never shown


def test_a_good_entry_does_contact_the_cluster(tmp_path, listener):
    """The control: the same run with a good entry gets past the check and reaches the listener."""
    proc, out, connections = run_role(tmp_path, listener, [GOOD])
    assert proc.returncode != 0 and connections >= 1, out


MODULE_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy straight with the module
      oforest.otree.otree_experiments:
        kubeconfig: "{{ kubeconfig }}"
        experiments: "{{ otree_experiment_experiments }}"
"""


@pytest.mark.parametrize("experiments, says", [
    ([dict(GOOD, host="pgg")], "experiments[pgg].host: 'pgg' is not a fully qualified domain name"),
    ([GOOD, dict(SECOND, namespace="otree-pgg")], "experiments[trust].namespace: otree-pgg is already used"),
    ([dict(GOOD, postgres={"verison": 17})], "experiments.postgres.verison"),
])
def test_the_module_alone_also_checks_before_any_contact(tmp_path, listener, experiments, says):
    """otree_experiments used without the role: the same checks, still before the first connection."""
    kubeconfig = write_kubeconfig(tmp_path, listener)
    before = listener.count
    proc = ansible_playbook(tmp_path, MODULE_PLAYBOOK, "-e", json.dumps(
        {"kubeconfig": str(kubeconfig), "otree_experiment_experiments": experiments}))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and says in out and "Traceback" not in out, out
    assert listener.count == before, "the module connected before reporting the mistake"


OPERATION_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: An operation's entry point
      ansible.builtin.include_role:
        name: oforest.otree.otree_experiment
        tasks_from: "{{ entry }}"
      vars:
        otree_experiment_kubeconfig: "{{ kubeconfig }}"
        otree_experiment_target: pgg
        otree_experiment_confirm: pgg
        otree_experiment_restore_dump: otree-20261127T101500Z-manual.dump
"""


@pytest.mark.parametrize("entry", ["backup", "restore", "resetdb"])
def test_the_operations_check_the_experiments_first_too(tmp_path, listener, entry):
    """backup, restore and resetdb start with the same check: a bad entry is named, nothing contacted."""
    kubeconfig = write_kubeconfig(tmp_path, listener)
    before = listener.count
    proc = ansible_playbook(tmp_path, OPERATION_PLAYBOOK, "-e", json.dumps(
        {"kubeconfig": str(kubeconfig), "entry": entry, "otree_experiment_experiments": [dict(GOOD, host="pgg")]}))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "experiments[pgg].host:" in out and "Traceback" not in out, out
    assert listener.count == before, "%s connected before reporting the mistake" % entry
