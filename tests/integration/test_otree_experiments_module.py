"""The otree_experiments module (render and apply in one call) run by ansible-playbook against the
REAL control plane of conftest.py: check mode stores nothing, the first run creates every object, a
re-run reports changed=false with the same secrets, a summary comes back (not the objects' content),
--diff -vvv shows no secret value, and state absent without purge keeps the data volume and Secret.
The control plane has no kubelet, so the rollouts are not waited for (wait: false)."""
from __future__ import annotations

import base64
import json
import uuid

from .playbook import ansible_playbook

ADMIN = "an-admin-password-for-tests"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy
      oforest.otree.otree_experiments:
        kubeconfig: "{{ kubeconfig }}"
        experiments: "{{ experiments }}"
        defaults: {ingress_class: public}   # the control plane has no Traefik (and its CRDs)
        wait: false
      register: deployed
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ deployed | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
      check_mode: false
"""


def run(tmp_path, cluster, experiments, *args):
    out = tmp_path / "result.json"
    if out.exists():
        out.unlink()
    proc = ansible_playbook(tmp_path, PLAYBOOK, "-e", json.dumps(
        {"kubeconfig": cluster.kubeconfig, "experiments": experiments, "out": str(out)}), *args, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout + proc.stderr


def test_deploy_rerun_and_remove(tmp_path, cluster):
    name = "exp-%s" % uuid.uuid4().hex[:6]
    ns = "otree-%s" % name
    exp = {"name": name, "host": "%s.experiments.example.org" % name, "image": "registry.example.org/lab/pgg:1.0.0",
           "admin_password": ADMIN}
    client = cluster.client()
    try:
        result, out = run(tmp_path, cluster, [exp], "--check")
        assert result["changed"] and result["experiments"][0]["counts"]["created"] >= 10
        namespaces = [n["metadata"]["name"] for n in client.request("GET", "/api/v1/namespaces")[1]["items"]]
        assert ns not in namespaces  # check mode stored nothing

        result, out = run(tmp_path, cluster, [exp], "--diff", "-vvv")
        [entry] = result["experiments"]
        assert result["changed"] and entry["changed"] and entry["namespace"] == ns
        assert entry["url"] == "https://%s.experiments.example.org/" % name
        assert set(entry["generated"]) == {"POSTGRES_PASSWORD", "OTREE_REST_KEY"}
        assert all(set(o) == {"kind", "apiVersion", "name", "namespace", "action"} for o in entry["objects"])
        secret = client.request("GET", "/api/v1/namespaces/%s/secrets/otree-secrets" % ns)[1]
        values = [base64.b64decode(v).decode() for v in secret["data"].values()]
        assert ADMIN in values
        leaked = [v[:4] + "..." for v in values + list(secret["data"].values()) if v in out]
        assert not leaked, "secret values in the output: %s" % leaked

        result, out = run(tmp_path, cluster, [exp])
        [entry] = result["experiments"]
        assert not result["changed"] and entry["generated"] == [] and entry["objects"] == []
        assert entry["counts"] == {"unchanged": sum(entry["counts"].values())}
        again = client.request("GET", "/api/v1/namespaces/%s/secrets/otree-secrets" % ns)[1]
        assert again["data"] == secret["data"]  # kept, never regenerated

        result, out = run(tmp_path, cluster, [dict(exp, state="absent")])
        [entry] = result["experiments"]
        assert entry["changed"] and entry["counts"]["pruned"] >= 1
        kept = {(o["kind"], o["name"]) for o in entry["objects"] if o["action"] == "kept"}
        assert ("PersistentVolumeClaim", "postgres-data") in kept and ("Secret", "otree-secrets") in kept
        client.request("GET", "/api/v1/namespaces/%s/persistentvolumeclaims/postgres-data" % ns)
        deployments = client.request("GET", "/apis/apps/v1/namespaces/%s/deployments" % ns)[1]["items"]
        assert deployments == []
    finally:
        try:
            client.request("DELETE", "/api/v1/namespaces/%s" % ns)
        except Exception:  # not created
            pass
