"""Rendered manifests against the Kubernetes schemas and checkov.

- kubernetes-validate --strict for every Kubernetes version the supported MicroK8s channels carry:
  1.31 (the first with cert-manager >= 1.14) to 1.35 (the last that runs on Ubuntu 20.04's cgroup v1).
- Traefik's Middleware (a CRD kind kubernetes-validate has no schema for) against the CRD of the
  Traefik release the node runs, from its Go module (tests/k8s/components/traefik), strictly (no field
  the schema does not have).
- checkov: every failed check on a rendered workload must be in ACCEPTED with its reason.
The tools live in their own virtualenv (scripts/aux-venv.sh tests/manifests/requirements-tools.txt).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import otree_render  # noqa: E402

KUBERNETES_VERSIONS = ["1.31", "1.32", "1.33", "1.34", "1.35"]
SPECS = {
    "nginx-pg16-pullsecret": {"name": "pgg", "host": "pgg.example.org", "image": "registry.example.org/lab/pgg:1.0.0",
                              "image_pull_secret": {"registry": "registry.example.org", "username": "deploy",
                                                    "password": "gldt-not-a-real-token"}},
    "traefik-pg18-demo": {"name": "trust", "host": "trust.example.org", "ingress_class": "traefik",
                          "image": "registry.example.org/lab/trust@sha256:" + "a" * 64, "auth_level": "DEMO",
                          "postgres": {"version": 18, "storage_class": "microk8s-hostpath"},
                          "extra_env": {"OTREE_EXTRA": "1"}},
}

# checkov findings we accept, per container, each with the reason. Anything else fails the test.
ACCEPTED = {
    ("otree", "CKV_K8S_43"): "the image is pinned by tag (the pipeline tags every build with its commit SHA); a "
                             "digest is accepted too (image: repo@sha256:...)",
    ("otree", "CKV_K8S_35"): "oTree reads DATABASE_URL, OTREE_ADMIN_PASSWORD and OTREE_REST_KEY only from its "
                             "environment (otree/settings.py, otree/database.py): files would not be read",
    ("otree", "CKV_K8S_15"): "tags are immutable commit SHAs; IfNotPresent lets a pod restart while the registry "
                             "is unreachable (an outage during a session otherwise)",
    ("postgres", "CKV_K8S_43"): "the official image is pinned by major version; a digest would freeze it against "
                                "the minor releases that carry security fixes",
    ("postgres", "CKV_K8S_15"): "see otree: a restart must not depend on the registry",
    ("postgres", "CKV_K8S_40"): "the official image's postgres user is uid 999; its files on the volume are owned "
                                "by it",
    ("postgres-backup", "CKV_K8S_43"): "the backup job uses the official postgres image of the server's major, "
                                       "like the server (pg_dump must not be older than the server)",
    ("postgres-backup", "CKV_K8S_15"): "see otree: a backup must not depend on the registry",
    ("postgres-backup", "CKV_K8S_40"): "runs as the postgres image's uid 999, the owner of the dumps",
}


@pytest.fixture(scope="module")
def tools():
    out = subprocess.run([str(ROOT / "scripts" / "aux-venv.sh"), "tests/manifests/requirements-tools.txt"],
                         capture_output=True, text=True, check=True, cwd=str(ROOT))
    return Path(out.stdout.strip().splitlines()[-1]) / "bin"


@pytest.fixture(scope="module", params=sorted(SPECS))
def rendered(request, tmp_path_factory):
    item = otree_render.render_all([SPECS[request.param]])[0]
    path = tmp_path_factory.mktemp("manifests") / ("%s.yaml" % request.param)
    path.write_text(yaml.safe_dump_all(item["manifests"]))
    return path, item["manifests"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_schema_strict(tools, rendered, version):
    path, manifests = rendered
    proc = subprocess.run([str(tools / "kubernetes-validate"), "--strict", "-k", version, str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = proc.stdout.count(" passed for resource ")
    builtin = [m for m in manifests if m["apiVersion"] not in CRD_KINDS]
    assert passed == len(builtin), "only %d of %d objects validated:\n%s" % (passed, len(builtin), proc.stdout)


CRD_KINDS = {"traefik.io/v1alpha1"}


def strict(schema):
    """An openAPIV3Schema as the API server applies it to a structural CRD: unknown fields refused."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def traefik_crds():
    mod = subprocess.run(["go", "mod", "download", "-json", "github.com/traefik/traefik/v3"], capture_output=True,
                         text=True, check=True, cwd=str(ROOT / "tests" / "k8s" / "components" / "traefik"))
    crds = yaml.safe_load_all((Path(json.loads(mod.stdout)["Dir"]) / "integration" / "fixtures" / "k8s" /
                               "01-traefik-crd.yml").read_text())
    return {(c["spec"]["group"] + "/" + v["name"], c["spec"]["names"]["kind"]): v["schema"]["openAPIV3Schema"]
            for c in crds if c for v in c["spec"]["versions"]}


def test_traefik_objects_against_traefiks_crds(rendered, traefik_crds):
    _, manifests = rendered
    crd_objects = [m for m in manifests if m["apiVersion"] in CRD_KINDS]
    for obj in crd_objects:
        schema = traefik_crds[(obj["apiVersion"], obj["kind"])]
        jsonschema.validate(obj, strict(schema))
    # the schema is really applied: a misspelt field is refused
    if crd_objects:
        bad = dict(crd_objects[0], spec={"redirectSchema": {"scheme": "https"}})
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, strict(traefik_crds[(bad["apiVersion"], bad["kind"])]))
    assert bool(crd_objects) == (manifests[0]["metadata"]["name"] == "otree-trust")  # the traefik spec has one


def test_checkov_findings_all_have_reasons(tools, rendered):
    path, _ = rendered
    proc = subprocess.run([str(tools / "checkov"), "-f", str(path), "--framework", "kubernetes", "-o", "json",
                           "--quiet", "--compact"], capture_output=True, text=True)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f for r in reports for f in r["results"]["failed_checks"]]
    unexplained = []
    for f in failed:
        # "Deployment.<namespace>.otree", "CronJob.<namespace>.postgres-backup": the workload's name
        container = f["resource"].split(".")[-1] if f["resource"].split(".")[0] in ("Deployment", "CronJob") \
            else f["resource"]
        if (container, f["check_id"]) not in ACCEPTED:
            unexplained.append("%s %s: %s" % (f["check_id"], f["resource"], f["check_name"]))
    assert not unexplained, "checkov findings without a written reason:\n" + "\n".join(unexplained)
    summary = reports[0]["summary"]
    # checkov really read the objects (a parse failure would pass nothing and fail nothing)
    assert summary["resource_count"] >= 10 and summary["passed"] >= 50, summary
    assert summary["failed"] == len(failed)
