"""Unit tests of the k8s_apply engine's pure parts (no network)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils.k8s import common, fields, waits  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s import engine as k8s_engine  # noqa: E402


@pytest.mark.parametrize("given,canonical", [
    ("1024Mi", "1Gi"), ("1Gi", "1Gi"), ("0.5", "500m"), ("250m", "250m"), ("1000m", "1"), (2, "2"),
    ("1536Mi", "1536Mi"), ("2000", "2k"), ("1.5Gi", "1536Mi"), ("abc", "abc"),
])
def test_canonical_quantity(given, canonical):
    assert fields.canonical_quantity(given) == canonical


def test_normalize_secret_and_quantities():
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    out = fields.normalize(obj)
    assert out["data"] == {"k": "dg=="} and "stringData" not in out
    assert obj["stringData"] == {"k": "v"}  # the input is not modified
    pvc = {"kind": "PersistentVolumeClaim", "spec": {"resources": {"requests": {"storage": "1024Mi"}}}}
    assert fields.normalize(pvc)["spec"]["resources"]["requests"]["storage"] == "1Gi"
    dep = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "c", "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}]}}}}
    limits = fields.normalize(dep)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "1", "memory": "1Gi"}


def test_contained_allows_server_defaults_only():
    live = {"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate"},
                     "ports": [{"port": 80, "protocol": "TCP"}]}}
    assert fields.contained({"spec": {"replicas": 1, "ports": [{"port": 80}]}}, live)
    assert not fields.contained({"spec": {"replicas": 2}}, live)
    assert not fields.contained({"spec": {"ports": [{"port": 80}, {"port": 81}]}}, live)
    assert not fields.contained({"spec": {"paused": True}}, live)
    assert not fields.contained({"a": True}, {"a": 1})  # a bool is not an int


def test_field_set_matches_server_fieldsv1():
    """Field set of an applied Deployment == the FieldsV1 the real server recorded for it (02)."""
    import json
    steps = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "k8s-api-transcript" /
                        "02-apply-create-reapply.json").read_text())
    checked = 0
    for step in steps:
        if step["request"]["method"] == "PATCH" and step["response"]["status"] == 201:
            body = step["request"]["body"]
            recorded = next(m for m in step["response"]["body"]["metadata"]["managedFields"]
                            if m["manager"] == "oforest.otree")
            if body["kind"] == "Secret" and "stringData" in body:
                continue  # we send data, never stringData
            assert fields.field_set(body) == fields.fieldsv1_set(recorded["fieldsV1"]), body["kind"]
            checked += 1
    assert checked >= 10


def test_phases_put_crds_then_namespaces_first():
    engine = k8s_engine.Engine(client=None)
    items = [{"kind": "ConfigMap"}, {"kind": "Namespace"}, {"kind": "CustomResourceDefinition"}, {"kind": "Widget"}]
    phases = engine.phases(items)
    assert [[o["kind"] for o in p] for p in phases] == [["CustomResourceDefinition"], ["Namespace"],
                                                        ["ConfigMap", "Widget"]]


@pytest.mark.parametrize("bad,message", [
    ("not a mapping", "manifest #1 is not a mapping"),
    ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "manifest #1 has no apiVersion"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "has no metadata.name"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "needs metadata.namespace"),
])
def test_prepare_rejects_bad_manifests_before_any_request(bad, message):
    engine = k8s_engine.Engine(client=None)  # no client: a request would fail loudly
    with pytest.raises(common.K8sError) as err:
        engine.prepare([bad])
    assert message in str(err.value)


def test_prepare_rejects_duplicates_and_labels_owner():
    engine = k8s_engine.Engine(client=None, owner="lab")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}
    assert engine.prepare([cm])[0]["metadata"]["labels"][common.OWNER_LABEL] == "lab"
    with pytest.raises(common.K8sError, match="appears twice"):
        engine.prepare([cm, dict(cm)])


def test_rollout_done_reads_recorded_status():
    import json
    steps = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "k8s-api-transcript" /
                        "11-rollout-status.json").read_text())
    done, why = waits.rollout_done(steps[1]["response"]["body"])  # no kubelet: never available
    assert not done and "0 of 1 replicas available" in why
    ready = {"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 1},
             "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1}}
    assert waits.rollout_done(ready) == (True, "ready")
    stale = dict(ready, status=dict(ready["status"], observedGeneration=1))
    assert not waits.rollout_done(stale)[0]
    failed = dict(ready, status=dict(ready["status"], availableReplicas=0, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]))
    assert waits.rollout_done(failed) == (False, "failed: too slow")


def test_redact_hides_secret_values():
    secret = {"kind": "Secret", "data": {"pw": "c2VjcmV0"}}
    out = fields.redact(secret)
    assert "c2VjcmV0" not in repr(out) and out["data"]["pw"].startswith("<redacted")
    assert secret["data"]["pw"] == "c2VjcmV0"


def test_comparable_drops_server_fields():
    obj = {"metadata": {"name": "x", "resourceVersion": "1", "managedFields": [], "generation": 3, "uid": "u",
                        "annotations": {"deployment.kubernetes.io/revision": "2"}}, "status": {"a": 1}, "spec": {}}
    assert fields.comparable(obj) == {"metadata": {"name": "x"}, "spec": {}}
