"""The collection's metadata agrees with itself and with the pinned controller environment.

These guard the promises README makes: the dependencies declared for Galaxy users (galaxy.yml,
requirements.yml) are the ones our CI takes from the pinned `ansible` package, at versions that
satisfy the declared ranges, and the pinned ansible-core is one meta/runtime.yml admits.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as ansible_core_version

ROOT = Path(__file__).resolve().parents[2]


def load(path: str):
    return yaml.safe_load((ROOT / path).read_text())


def installed_collection_version(fqcn: str) -> str:
    import ansible_collections  # the `ansible` package's bundled collections

    for base in ansible_collections.__path__:
        manifest = Path(base, *fqcn.split("."), "MANIFEST.json")
        if manifest.exists():
            return yaml.safe_load(manifest.read_text())["collection_info"]["version"]
    raise AssertionError(f"{fqcn} is not installed by the pinned `ansible` package")


def test_galaxy_identity():
    galaxy = load("galaxy.yml")
    assert (galaxy["namespace"], galaxy["name"]) == ("oforest", "otree")
    assert re.fullmatch(r"\d+\.\d+\.\d+", galaxy["version"])


def test_requirements_yml_matches_galaxy_dependencies():
    galaxy = load("galaxy.yml")["dependencies"]
    req = {c["name"]: c["version"] for c in load("requirements.yml")["collections"]}
    assert req == galaxy


@pytest.mark.parametrize("fqcn", sorted(load("galaxy.yml")["dependencies"]))
def test_dependency_satisfied_by_pinned_ansible_package(fqcn):
    wanted = load("galaxy.yml")["dependencies"][fqcn]
    have = installed_collection_version(fqcn)
    assert meets_requirements(have, wanted), f"{fqcn} {have} does not satisfy {wanted}"


def test_pinned_ansible_core_meets_requires_ansible():
    spec = load("meta/runtime.yml")["requires_ansible"]
    for clause in spec.split(","):
        op, ver = re.fullmatch(r"\s*(>=|<=|<|>|==)\s*([\d.]+)\s*", clause).groups()
        have, want = LooseVersion(ansible_core_version), LooseVersion(ver)
        ok = {">=": have >= want, "<=": have <= want, "<": have < want, ">": have > want, "==": have == want}[op]
        assert ok, f"ansible-core {ansible_core_version} fails requires_ansible {spec}"


def test_direct_requirements_are_pinned_and_locked():
    direct = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([\w.]+)", line)
            assert m, f"requirements-dev.txt: '{line}' is not pinned with =="
            direct[m.group(1).lower()] = m.group(3)
    lock = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, ver = line.split("==")
            lock[name.lower().replace("_", "-")] = ver
    for name, ver in direct.items():
        assert lock.get(name.replace("_", "-")) == ver, f"{name}=={ver} differs in requirements-lock.txt"
    assert direct["ansible-core"].startswith("2.19.")


def test_every_assert_condition_is_a_string():
    """A condition with ': ' inside (e.g. search('Status: active')) unquoted is a YAML mapping, not a
    test: ansible then fails with an unrelated message. Found three times; checked here for all files."""
    import glob

    root = Path(__file__).resolve().parents[2]
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            for key in ("ansible.builtin.assert", "assert"):
                that = node.get(key, {}).get("that") if isinstance(node.get(key), dict) else None
                for cond in (that if isinstance(that, list) else [that] if that is not None else []):
                    if not isinstance(cond, str):
                        bad.append("%s: %r" % (where, cond))
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)
    for pattern in ("roles/*/tasks/*.yml", "playbooks/*.yml", "molecule/*/*.yml"):
        for f in glob.glob(str(root / pattern)):
            walk(yaml.safe_load(Path(f).read_text()), f)
    assert bad == []
