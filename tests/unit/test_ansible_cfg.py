"""ansible.cfg sets only what the ansible-core we pin knows: a setting it does not know is ignored
without a word (gather_subset was, under ansible-core 2.19), so it would promise what does not happen."""
import configparser
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ini_keys(args):
    """(section, key) of every ini setting `ansible-config list ARGS` documents."""
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-config"), "list", "--format", "json"] + args,
                         capture_output=True, text=True, check=True, cwd=str(ROOT)).stdout
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for ini in node.get("ini") or []:
                if isinstance(ini, dict) and "section" in ini and "key" in ini:
                    found.add((ini["section"], ini["key"]))
            for value in node.values():
                walk(value)
    walk(json.loads(out))
    return found


def test_every_setting_in_ansible_cfg_is_known_to_ansible_core():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    known = ini_keys([])  # the base settings
    for plugin_type in ("connection", "callback"):  # and those of the plugins ansible.cfg configures
        known |= ini_keys(["-t", plugin_type])
    unknown = [(section, key) for section in cfg.sections() for key in cfg[section] if (section, key) not in known]
    assert not unknown, "ansible.cfg settings ansible-core ignores: %s" % unknown
