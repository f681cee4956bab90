"""The scaffolded pipeline's jobs run by gitlab-ci-local (shell executor) on the sample oTree project:
- test: oTree's own bots (`otree test`) for real, with the pinned oTree;
- build: buildah builds the image from the scaffolded Dockerfile on a locally built base (a STAND-IN
  for the pinned python:3.11-slim image, tests/pipeline/build-python-base.sh: no registry is
  reachable here); the image runs as uid 10001 (the Deployment's runAsUser) with oTree and psycopg2.
  Pushing needs a registry and is skipped (CI_REGISTRY empty), as the job does in a project without
  one.
The deploy job needs a cluster and kubectl (not here): its manifests and permissions are tested in
tests/manifests/test_pipeline_scaffold.py and tests/unit/test_gitlab_runner_rbac.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("OFOREST_CACHE", "/var/cache/oforest-otree"))
SAMPLE = ROOT / "tests" / "runtime" / "sample_project"


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def gcl():
    prefix = CACHE / "npm-gitlab-ci-local"
    prefix.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests" / "pipeline" / "package.json", prefix / "package.json")
    binary = prefix / "node_modules" / ".bin" / "gitlab-ci-local"
    if not binary.exists():
        res = sh(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix)])
        assert res.returncode == 0, res.stdout + res.stderr
    return binary


@pytest.fixture(scope="module")
def otree_bin():
    out = sh([str(ROOT / "scripts" / "aux-venv.sh"), "tests/runtime/requirements-otree.txt"], cwd=str(ROOT), check=True)
    return Path(out.stdout.strip().splitlines()[-1]) / "bin"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("gcl") / "pgg"
    shutil.copytree(SAMPLE, dest)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    res = sh([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
              "-e", "ansible_python_interpreter=" + sys.executable, "-e", "scaffold_dest=" + str(dest),
              "-e", json.dumps({"scaffold_experiment": {"name": "pgg", "host": "pgg.experiments.example.org"}}),
              str(ROOT / "playbooks" / "scaffold_experiment.yml")], env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit", "-q", "-m", "pgg"],
                ["git", "remote", "add", "origin", "https://gitlab.example.org/lab/pgg.git"]):
        sh(cmd, cwd=str(dest), check=True)
    return dest


def run_job(gcl, project, job, path_prefix="", variables=()):
    env = dict(os.environ, PATH=path_prefix + os.environ["PATH"])
    args = [str(gcl), "--force-shell-executor", "--shell-isolation"]
    for v in variables:
        args += ["--variable", v]
    return sh(args + [job], env=env, cwd=str(project), timeout=1800)


def test_test_job_plays_the_bots(gcl, project, otree_bin):
    res = run_job(gcl, project, "test", path_prefix=str(otree_bin) + ":")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Creating 'guess' session" in out and "Bots completed session" in out, out[-3000:]
    assert "PASS  test" in out


def test_test_job_fails_when_a_bot_fails(gcl, project, otree_bin, tmp_path):
    broken = tmp_path / "pgg"
    shutil.copytree(project, broken)
    tests = next(broken.glob("*/tests.py"))
    tests.write_text(tests.read_text() + "\nraise SystemExit('bot test broken on purpose')\n")
    sh(["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit", "-qam", "break"], cwd=str(broken))
    res = run_job(gcl, broken, "test", path_prefix=str(otree_bin) + ":")
    assert res.returncode != 0


def test_build_job_builds_a_runnable_non_root_image(gcl, project):
    base = sh([str(ROOT / "tests" / "pipeline" / "build-python-base.sh")])
    assert base.returncode == 0, base.stdout + base.stderr
    sha = sh(["git", "rev-parse", "--short", "HEAD"], cwd=str(project)).stdout.strip()
    res = run_job(gcl, project, "build", variables=[
        "PYTHON_IMAGE=localhost/oforest/python-base:3.11-bookworm", "CI_REGISTRY=",
        "CI_REGISTRY_IMAGE=localhost/lab/pgg", "STORAGE_DRIVER=overlay", "CI_COMMIT_SHORT_SHA=" + sha])
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "not pushed" in out
    image = "localhost/lab/pgg:" + sha
    info = json.loads(sh(["podman", "image", "inspect", image], check=True).stdout)[0]["Config"]
    assert info["User"] == "10001" and info["Cmd"] == ["otree", "prodserver", "8000"]
    run = sh(["podman", "run", "--rm", "--network", "none", image, "python", "-c",
              "import os, otree, psycopg2; print(os.getuid(), otree.__version__)"])
    assert run.returncode == 0, run.stderr
    uid, version = run.stdout.split()
    assert uid == "10001" and version.startswith("6.")
    sh(["podman", "rmi", "-f", image])
