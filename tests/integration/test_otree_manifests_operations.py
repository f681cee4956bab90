"""The otree_manifests module names what a maintenance operation needs (the role composes none of it
in YAML): the Job, the dump, the namespace, the owner label of the operation's objects, and the oTree
Deployment stopped and as it runs, without any secret value. Run through ansible-playbook (no cluster)."""
from __future__ import annotations

import json
import re

from .playbook import ansible_playbook

EXPERIMENTS = [{"name": "pgg", "host": "pgg.experiments.example.org", "image": "registry.example.org/lab/pgg:1.0.0",
                "namespace": "lab-pgg", "admin_password": "a-given-admin-password"}]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Render the operation
      oforest.otree.otree_manifests:
        experiments: "{{ experiments }}"
        operation: "{{ operation }}"
        experiment: pgg
        label: "{{ label | default(omit) }}"
        dump: "{{ dump | default(omit) }}"
      register: op
    - name: Write what it returned
      ansible.builtin.copy:
        content: "{{ op | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def run(tmp_path, **extra):
    out = tmp_path / "op.json"
    proc = ansible_playbook(tmp_path, PLAYBOOK, "-e", json.dumps(dict(experiments=EXPERIMENTS, out=str(out), **extra)))
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def test_a_backup_is_named_by_the_module(tmp_path):
    proc, op = run(tmp_path, operation="backup", label="before-resetdb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = op["operation"]
    assert re.match(r"^otree-\d{8}T\d{6}Z-before-resetdb\.dump$", info["dump"]), info
    assert re.match(r"^backup-\d{8}t\d{6}z$", info["name"]), info
    assert info["namespace"] == "lab-pgg" and info["owner"] == "otree-pgg-operations"
    assert info["experiment_owner"] == "otree-pgg"
    job = op["manifests"][0]
    assert job["kind"] == "Job" and job["metadata"]["name"] == info["name"]
    assert job["metadata"]["namespace"] == "lab-pgg"
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DUMP"] == info["dump"]
    [stopped], [running] = info["stop"], info["start"]
    assert stopped["kind"] == running["kind"] == "Deployment" and stopped["metadata"]["name"] == "otree"
    assert stopped["spec"]["replicas"] == 0 and running["spec"]["replicas"] == 1
    assert stopped["spec"]["template"] == running["spec"]["template"]
    assert "a-given-admin-password" not in json.dumps(info) + proc.stdout


def test_a_restore_keeps_the_given_dump_and_a_bad_label_is_named(tmp_path):
    proc, op = run(tmp_path, operation="restore", dump="otree-20261127T101500Z-manual.dump")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert op["operation"]["dump"] == "otree-20261127T101500Z-manual.dump"
    assert op["operation"]["name"].startswith("restore-")
    proc, op = run(tmp_path, operation="backup", label="before restore!")
    assert proc.returncode != 0 and "label: 'before restore!' is not a word" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
