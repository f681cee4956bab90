"""The experiment's fields are defined once (plugins/module_utils/otree_schema.py): the role's argument
spec and the module's documentation are written from it (scripts/experiment_schema.py), the module's
argument spec and the renderer's defaults are built from it at run time."""
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1].parent
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import otree_render, otree_schema  # noqa: E402


def test_the_files_written_from_the_schema_are_up_to_date():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "experiment_schema.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_role_checks_every_field_of_the_schema_with_its_type():
    spec = yaml.safe_load((ROOT / "roles/otree_experiment/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]["otree_experiment_experiments"]["options"]

    def same(role, schema, where):
        assert list(role) == list(schema), where
        for key, opt in schema.items():
            for field in ("type", "choices", "required", "no_log"):
                assert role[key].get(field) == opt.get(field), "%s.%s %s" % (where, key, field)
            if "options" in opt:
                same(role[key]["options"], opt["options"], "%s.%s" % (where, key))
    same(options, otree_schema.EXPERIMENT, "experiments")


def test_the_renderer_fills_the_schema_defaults():
    spec = otree_render.normalize_spec({"name": "pgg", "host": "pgg.example.org", "image": "r.example.org/p:1"})
    assert spec["postgres"]["version"] == otree_schema.EXPERIMENT["postgres"]["options"]["version"]["default"]
    assert spec["backup"]["schedule"] == otree_schema.EXPERIMENT["backup"]["options"]["schedule"]["default"]
    assert spec["resources"]["limits"]["memory"] == "1Gi" and spec["run_as_user"] == 10001


def test_the_module_argument_spec_has_no_defaults_so_the_defaults_option_still_applies():
    def walk(options):
        for opt in options.values():
            assert "default" not in opt
            walk(opt.get("options", {}))
    walk(otree_schema.argument_spec())
    merged = otree_render.validate_all([{"name": "pgg", "host": "pgg.example.org", "image": "r.example.org/p:1",
                                         "ingress_class": None}], {"ingress_class": "traefik"})[0]
    assert merged["ingress_class"] == "traefik"
