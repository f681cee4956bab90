"""The otree_experiment role run by ansible-playbook against the cluster of conftest.py: when applying
an experiment fails, nothing secret reaches the output, even with -vvv: not the generated admin
password and REST key, not the registry's deploy token, not their base64 forms in the stored Secrets.
The apply task renders and applies inside the module (otree_experiments), so no manifest travels
through the controller; its failure prints the module's arguments (masked) and its message.
The failure here is a real one: the control plane has no kubelet, so oTree never becomes available
and the apply's wait gives up."""
from __future__ import annotations

import base64
import uuid

from .playbook import ansible_playbook

DEPLOY_TOKEN = "gldt-deploy-token-8c1f0e"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: oforest.otree.otree_experiment
      vars:
        otree_experiment_kubeconfig: "{{ kubeconfig }}"
        otree_experiment_wait_timeout: 5
        otree_experiment_ingress_class: public   # the control plane has no ingress controller
        otree_experiment_experiments:
          - name: "{{ experiment }}"
            host: secrets-test.experiments.example.org
            image: registry.gitlab.example.org/lab/pgg:1.0
            image_pull_secret:
              registry: registry.gitlab.example.org
              username: gitlab+deploy-token-1
              password: "%s"
""" % DEPLOY_TOKEN


def test_a_failing_apply_prints_no_secret(tmp_path, cluster):
    name = "sec-%s" % uuid.uuid4().hex[:6]
    try:
        proc = ansible_playbook(tmp_path, PLAYBOOK, "-vvv", "-e", "kubeconfig=%s experiment=%s" % (
            cluster.kubeconfig, name), timeout=300)
        out = proc.stdout + proc.stderr
        # it failed where it should: the apply task
        assert proc.returncode != 0, out
        assert "Deploy, update or remove each experiment" in out and "fatal: [localhost]" in out, out[-3000:]
        # what was generated and stored, read back from the cluster
        client = cluster.client()
        secret = client.request("GET", "/api/v1/namespaces/otree-%s/secrets/otree-secrets" % name)[1]
        pull = client.request("GET", "/api/v1/namespaces/otree-%s/secrets/registry-credentials" % name)[1]
        values = [base64.b64decode(v).decode() for v in secret["data"].values()] + [DEPLOY_TOKEN]
        values += list(pull["data"].values()) + list(secret["data"].values())
        assert len(values) >= 4
        leaked = [v[:4] + "..." for v in values if v in out]
        assert not leaked, "secret values in the output: %s" % leaked
        # the error still says what went wrong
        assert "did not become ready within 5s" in out, out[-3000:]
    finally:
        if cluster.real:
            try:
                cluster.client().request("DELETE", "/api/v1/namespaces/otree-%s" % name)
            except Exception:  # not created
                pass
