"""The k8s_apply module run by ansible-playbook against the cluster of conftest.py (the REAL control
plane, or OFOREST_KUBECONFIG's): first run changed, re-run changed=0, check mode predicts a change and
stores nothing, secrets never appear in the output, even with -vvv and --diff."""
from __future__ import annotations

import base64

from .playbook import ansible_playbook

SECRET = "very-secret-admin-pw-4711"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply
      oforest.otree.k8s_apply:
        kubeconfig: "{{ kubeconfig }}"
        manifests:
          - apiVersion: v1
            kind: Namespace
            metadata: {name: "{{ ns }}"}
          - apiVersion: v1
            kind: Secret
            metadata: {name: otree-admin, namespace: "{{ ns }}"}
            stringData: {OTREE_ADMIN_PASSWORD: "%s"}
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: "{{ ns }}"}
            data: {OTREE_AUTH_LEVEL: "{{ auth_level }}"}
      register: applied
    - name: Show the result
      ansible.builtin.debug:
        var: applied
""" % SECRET


def run_playbook(tmp_path, kubeconfig, namespace, *args, auth_level="STUDY"):
    proc = ansible_playbook(tmp_path, PLAYBOOK, "-e", "kubeconfig=%s auth_level=%s ns=%s" % (
        kubeconfig, auth_level, namespace), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def recap_changed(output):
    line = next(l for l in output.splitlines() if l.startswith("localhost") and "changed=" in l)
    return int(line.split("changed=")[1].split()[0])


def test_module_idempotent_check_mode_and_no_secret_in_output(tmp_path, cluster, namespace):
    kubeconfig = cluster.kubeconfig
    out = run_playbook(tmp_path, kubeconfig, namespace, "-vvv", "--diff")
    assert recap_changed(out) == 1
    assert SECRET not in out
    assert base64.b64encode(SECRET.encode()).decode() not in out
    out = run_playbook(tmp_path, kubeconfig, namespace, "-vvv", "--diff")
    assert recap_changed(out) == 0, out
    assert SECRET not in out
    client = cluster.client()
    cm_path = "/api/v1/namespaces/%s/configmaps/settings" % namespace
    secret_path = "/api/v1/namespaces/%s/secrets/otree-admin" % namespace
    before = [client.request("GET", p)[1]["metadata"]["resourceVersion"] for p in (cm_path, secret_path)]
    out = run_playbook(tmp_path, kubeconfig, namespace, "--check", "--diff", auth_level="DEMO")
    assert recap_changed(out) == 1 and "DEMO" in out  # predicted, with the diff
    # dry run: nothing stored (no controller writes to a ConfigMap or Secret)
    assert [client.request("GET", p)[1]["metadata"]["resourceVersion"] for p in (cm_path, secret_path)] == before
    assert client.request("GET", cm_path)[1]["data"]["OTREE_AUTH_LEVEL"] == "STUDY"


def test_diff_shows_each_changed_object_as_a_unified_diff(tmp_path, cluster, namespace):
    """What a user sees with --diff: ansible-core's callback renders one before/after pair per changed
    object (a header naming it, - and + lines), and never a warning instead of the diff."""
    kubeconfig = cluster.kubeconfig
    quiet = PLAYBOOK.split("    - name: Show the result")[0]
    proc = ansible_playbook(tmp_path, quiet, "-e", "kubeconfig=%s auth_level=STUDY ns=%s" % (kubeconfig, namespace))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = ansible_playbook(tmp_path, quiet, "--diff", "-e", "kubeconfig=%s auth_level=DEMO ns=%s" % (
        kubeconfig, namespace))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Failure using method" not in out and "splitlines" not in out, out
    assert "--- before: ConfigMap %s/settings" % namespace in out, out
    assert "+++ after: ConfigMap %s/settings" % namespace in out, out
    removed = [line for line in out.splitlines() if line.startswith("-") and "OTREE_AUTH_LEVEL" in line]
    added = [line for line in out.splitlines() if line.startswith("+") and "OTREE_AUTH_LEVEL" in line]
    assert len(removed) == 1 and "STUDY" in removed[0] and len(added) == 1 and "DEMO" in added[0], out
    assert "Secret %s/otree-admin" % namespace not in out  # unchanged objects are not shown
    assert SECRET not in out
