"""Every role's README lists its variables exactly as meta/argument_specs.yml defines them
(scripts/role_readmes.py generates that part; a changed spec without a regenerated README fails)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_role_readmes_are_generated_from_the_argument_specs():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_readmes.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_option_is_in_its_readme():
    import yaml
    for spec_file in ROOT.glob("roles/*/meta/argument_specs.yml"):
        readme = (spec_file.parent.parent / "README.md").read_text()
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            for name in entry.get("options") or {}:
                assert "| `%s` |" % name in readme, (spec_file, name)


def _descriptions(options):
    for opt in (options or {}).values():
        text = opt.get("description", "")
        yield from (text if isinstance(text, list) else [text])
        yield from _descriptions(opt.get("options"))


def test_no_description_is_a_template():
    """Ansible templates the argument spec when it validates a role's input: a '{{' in a description
    (an example expression) is evaluated on the host and fails the role's first task."""
    import yaml
    for spec_file in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            for text in _descriptions(entry.get("options")):
                assert "{{" not in text and "{%" not in text, (spec_file, text)
