"""playbooks/scaffold_experiment.yml on the sample oTree project: the files it writes, the
.gitlab-ci.yml against GitLab CI's JSON schema (check-jsonschema's vendored copy), the manifests the
deploy job applies against Kubernetes 1.35's schemas, re-run idempotence and that a user's edits are
kept. (Running the jobs themselves needs GitLab, a registry and a cluster: see README.)"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "runtime" / "sample_project"
PLACEHOLDER = "registry.invalid/otree-image:pipeline"


@pytest.fixture(scope="module")
def tools():
    out = subprocess.run([str(ROOT / "scripts" / "aux-venv.sh"), "tests/manifests/requirements-tools.txt"],
                         capture_output=True, text=True, check=True, cwd=str(ROOT))
    return Path(out.stdout.strip().splitlines()[-1]) / "bin"


def scaffold(dest, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_FORCE_COLOR="0")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
           "-e", "ansible_python_interpreter=" + sys.executable, "-e", "scaffold_dest=" + str(dest),
           "-e", json.dumps({"scaffold_experiment": {"name": "pgg", "host": "pgg.experiments.example.org"}}),
           str(ROOT / "playbooks" / "scaffold_experiment.yml")] + list(extra)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = tmp_path_factory.mktemp("project") / "pgg"
    shutil.copytree(SAMPLE, dest)
    proc = scaffold(dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def test_files_written(project):
    for f in ("Dockerfile", ".dockerignore", ".gitlab-ci.yml", "k8s/manifests.yaml", "k8s/stopped.yaml",
              "k8s/resetdb-job.yaml"):
        assert (project / f).is_file(), f


def test_gitlab_ci_matches_gitlab_schema(project, tools, tmp_path):
    ok = subprocess.run([str(tools / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci",
                         str(project / ".gitlab-ci.yml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the check can fail: a job with an unknown keyword is refused
    bad = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    bad["deploy"]["scripts"] = bad["deploy"].pop("script")
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(yaml.safe_dump(bad))
    nok = subprocess.run([str(tools / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(broken)],
                         capture_output=True, text=True)
    assert nok.returncode != 0


def test_pipeline_shape(project):
    ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert ci["stages"] == ["test", "build", "deploy", "manage"]
    assert ci["variables"]["IMAGE"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"
    assert ci["variables"]["KUBE_NAMESPACE"] == "otree-pgg"
    build = "\n".join(ci["build"]["script"])
    assert "buildah build" in build and "buildah push \"$IMAGE\"" in build and "docker " not in build
    assert 'test -n "$CI_COMMIT_SHORT_SHA"' in build          # never an empty tag
    assert "dind" not in json.dumps(ci) and "privileged" not in json.dumps(ci)
    deploy = "\n".join(ci["deploy"]["script"])
    assert "apply --server-side" in deploy and "rollout status deployment/otree" in deploy
    assert ci["deploy"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    for job in ("backup", "resetdb", "logs"):
        assert ci[job]["rules"] == [{"when": "manual"}]
    reset = "\n".join(ci["resetdb"]["script"])
    # backed up first, oTree stopped before the reset, started again in any case
    assert reset.index("before-resetdb") < reset.index("stopped.yaml") < reset.index("resetdb-job.yaml")
    assert "k8s/manifests.yaml" in "\n".join(ci["resetdb"]["after_script"])
    assert 'CONFIRM" = "pgg"' in reset


def test_dockerfile(project):
    text = (project / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=docker.io/library/python:3.11." in text      # pinned to a patch release
    assert "psycopg2-binary" in text
    assert 'CMD ["otree", "prodserver", "8000"]' in text
    # the image's user is the one the Deployment runs it as (files owned by it, no mismatch)
    docs = [d for d in yaml.safe_load_all((project / "k8s" / "manifests.yaml").read_text()) if d]
    otree = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "otree"][0]
    uid = otree["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"]
    assert "USER %d\n" % uid in text and "--uid %d " % uid in text and "--chown=%d:%d " % (uid, uid) in text, text


def test_the_image_user_follows_the_experiments_run_as_user(tmp_path):
    dest = tmp_path / "pgg"
    shutil.copytree(SAMPLE, dest)
    proc = scaffold(dest, "-e", json.dumps({"scaffold_experiment": {
        "name": "pgg", "host": "pgg.experiments.example.org", "run_as_user": 23456}}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "USER 23456\n" in (dest / "Dockerfile").read_text()


def test_the_pipeline_deploys_into_the_experiments_own_namespace(tmp_path):
    dest = tmp_path / "pgg"
    shutil.copytree(SAMPLE, dest)
    proc = scaffold(dest, "-e", json.dumps({"scaffold_experiment": {
        "name": "pgg", "host": "pgg.experiments.example.org", "namespace": "lab-pgg"}}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ci = yaml.safe_load((dest / ".gitlab-ci.yml").read_text())
    assert ci["variables"]["KUBE_NAMESPACE"] == "lab-pgg"


def test_manifests_are_the_renderers_without_namespace_and_secret(project, tools):
    docs = [d for d in yaml.safe_load_all((project / "k8s" / "manifests.yaml").read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert "Namespace" not in kinds and "Secret" not in kinds
    assert kinds.count("Deployment") == 2 and "Ingress" in kinds and "CronJob" in kinds
    otree = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "otree"][0]
    assert otree["spec"]["template"]["spec"]["containers"][0]["image"] == PLACEHOLDER
    stopped = yaml.safe_load((project / "k8s" / "stopped.yaml").read_text())
    assert stopped["spec"]["replicas"] == 0 and stopped["metadata"]["name"] == "otree"
    job = yaml.safe_load((project / "k8s" / "resetdb-job.yaml").read_text())
    assert job["kind"] == "Job" and job["metadata"]["name"] == "otree-resetdb-ci"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == PLACEHOLDER
    # what the deploy job applies, after its sed, is valid for Kubernetes 1.35
    applied = (project / "k8s" / "manifests.yaml").read_text().replace(PLACEHOLDER, "registry.example.org/lab/pgg:3f2a9c1")
    res = subprocess.run([str(tools / "kubernetes-validate"), "--strict", "-k", "1.35.0", "-"],
                         input=applied, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rerun_changes_nothing_and_keeps_edits(project):
    proc = scaffold(project)
    assert proc.returncode == 0 and "changed=0" in proc.stdout, proc.stdout
    (project / "Dockerfile").write_text((project / "Dockerfile").read_text() + "# lab edit\n")
    proc = scaffold(project)
    assert "changed=0" in proc.stdout and "# lab edit" in (project / "Dockerfile").read_text()


def test_not_an_otree_project_is_refused(tmp_path):
    proc = scaffold(tmp_path)
    assert proc.returncode != 0 and "has no settings.py" in proc.stdout
