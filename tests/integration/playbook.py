"""Run a playbook text with ansible-playbook against localhost, the collection from the work tree,
the default callback (what a user sees) and no colour."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ansible_playbook(tmp_path, playbook, *args, timeout=120):
    """subprocess.CompletedProcess of `ansible-playbook -i localhost, -c local <playbook> ARGS`."""
    pb = tmp_path / "pb.yml"
    pb.write_text(playbook)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(pb)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=timeout)
