"""README's set-up commands (walkthrough step 2), run as written: the venv's path works for a user
without root, and the inventory copy plus `ansible-vault create` succeed and leave the example's
vault alone. (Creating the venv itself is the CI's venv stage.)"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def setup_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("**2. The two set-up commands.**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("   #")[0].strip() for line in block.strip().splitlines()]
    assert len(lines) == 2, lines
    return lines


def test_the_venv_path_needs_no_root(tmp_path):
    venv_cmd = setup_commands()[0]
    assert venv_cmd.startswith("make venv && source ")
    path_expr = re.search(r'source "(\$\(.*\))/bin/activate"', venv_cmd).group(1)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    if os.geteuid() == 0:  # run it as an unprivileged user, as on a laptop
        shutil.chown(home, "nobody")
        argv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "bash", "-c",
                "echo %s" % path_expr]
    else:
        argv = ["bash", "-c", "echo %s" % path_expr]
    out = subprocess.run(argv, cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(home / ".cache" / "oforest-otree" / "venv-")), out.stdout


@pytest.mark.skipif(not (Path(sys.executable).parent / "ansible-vault").exists(), reason="needs the venv")
def test_the_inventory_commands_run_as_written(tmp_path):
    inventory_cmd = setup_commands()[1]
    shutil.copytree(ROOT / "inventories" / "example", tmp_path / "inventories" / "example")
    example_vault = (tmp_path / "inventories" / "example" / "group_vars" / "all" / "vault.yml").read_text()
    password = tmp_path / "new-password"
    password.write_text("a-new-vault-password\n")
    editor = tmp_path / "editor"  # what the user types into the editor ansible-vault opens
    editor.write_text("#!/bin/sh\necho 'vault_pgg_admin_password: typed-by-the-user' > \"$1\"\n")
    editor.chmod(0o755)
    env = dict(os.environ, EDITOR=str(editor), ANSIBLE_VAULT_PASSWORD_FILE=str(password),
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    # ansible-vault create opens the editor only on a terminal: util-linux' script gives it one
    out = subprocess.run(["script", "-qec", inventory_cmd, "/dev/null"], cwd=str(tmp_path), env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    mine = tmp_path / "inventories" / "mylab" / "group_vars" / "all" / "vault.yml"
    view = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "view", str(mine)], env=env,
                          capture_output=True, text=True)
    assert view.returncode == 0 and "typed-by-the-user" in view.stdout, view.stdout + view.stderr
    assert (tmp_path / "inventories" / "mylab" / "hosts.yml").exists()
    assert (tmp_path / "inventories" / "example" / "group_vars" / "all" / "vault.yml").read_text() == example_vault
    # run again by mistake: it stops before anything is copied or removed, the user's vault stays
    vault = mine.read_bytes()
    again = subprocess.run(["script", "-qec", inventory_cmd, "/dev/null"], cwd=str(tmp_path), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and mine.read_bytes() == vault, again.stdout + again.stderr
    assert not (tmp_path / "inventories" / "mylab" / "example").exists()
