"""The k8s_apply module run by ansible-playbook against the STAND-IN API server: first run
changed, re-run changed=0, check mode predicts a change and stores nothing, secrets never appear
in the output, even with -vvv and --diff."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.k8s_standin.server import start_background, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
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
            metadata: {name: demo}
          - apiVersion: v1
            kind: Secret
            metadata: {name: otree-admin, namespace: demo}
            stringData: {OTREE_ADMIN_PASSWORD: "%s"}
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: demo}
            data: {OTREE_AUTH_LEVEL: "{{ auth_level }}"}
      register: applied
    - name: Show the result
      ansible.builtin.debug:
        var: applied
""" % SECRET


def run_playbook(tmp_path, kubeconfig, *args, auth_level="STUDY"):
    pb = tmp_path / "pb.yml"
    pb.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb),
           "-e", "kubeconfig=%s auth_level=%s" % (kubeconfig, auth_level)] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def recap_changed(output):
    line = next(l for l in output.splitlines() if l.startswith("localhost") and "changed=" in l)
    return int(line.split("changed=")[1].split()[0])


def test_module_idempotent_check_mode_and_no_secret_in_output(tmp_path):
    server, url = start_background()
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        out = run_playbook(tmp_path, kubeconfig, "-vvv", "--diff")
        assert recap_changed(out) == 1
        assert SECRET not in out
        import base64
        assert base64.b64encode(SECRET.encode()).decode() not in out
        out = run_playbook(tmp_path, kubeconfig, "-vvv", "--diff")
        assert recap_changed(out) == 0, out
        assert SECRET not in out
        writes = server.store.writes
        out = run_playbook(tmp_path, kubeconfig, "--check", "--diff", auth_level="DEMO")
        assert recap_changed(out) == 1 and "DEMO" in out  # predicted, with the diff
        assert server.store.writes == writes  # dry run: nothing stored
        cm = server.store.objects[("/configmaps", "demo", "settings")]
        assert cm["data"]["OTREE_AUTH_LEVEL"] == "STUDY"
    finally:
        server.shutdown()
