"""k8s_apply engine against a REAL Kubernetes 1.35 control plane (or OFOREST_KUBECONFIG's cluster,
see conftest.py); the STAND-IN only where a test needs pods that run. Assertions use only what a
real server shows: its controllers write status on their own, so "nothing written by us" is told by
generation and our field manager's entry, not by resourceVersion."""
from __future__ import annotations

import copy
import time

import pytest

from tests.integration.conftest import experiment_manifests

from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import K8sError


def actions(results):
    return {"%s/%s" % (r["kind"], r["name"]): r["action"] for r in results}


def get(client, path):
    return client.request("GET", path)[1]


def deployment_path(ns, name="otree"):
    return "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name)


def our_writes(obj):
    """What only our writes change: generation and our field manager's managedFields entry (a real
    deployment controller moves resourceVersion with status writes of its own)."""
    ours = [(m.get("operation"), m.get("time"), m.get("fieldsV1")) for m in obj["metadata"].get("managedFields", [])
            if m["manager"] == "oforest.otree"]
    return obj["metadata"]["generation"], ours, obj["spec"]


def test_create_then_noop_reapply_writes_nothing(cluster, namespace):
    manifests = experiment_manifests(namespace)
    engine, client = cluster.engine()
    first = engine.run(manifests)
    assert set(actions(first).values()) == {"created"}
    assert len(first) == len(manifests) == 13

    time.sleep(1.2)  # a later second: Secret stringData / PVC / controller writes would show now
    dep_before = get(client, deployment_path(namespace))
    cm_before = get(client, "/api/v1/namespaces/%s/configmaps/otree-config" % namespace)
    writes_before = None if cluster.real else cluster.store.writes
    engine2, client2 = cluster.engine()
    second = engine2.run(manifests)
    assert set(actions(second).values()) == {"unchanged"}, actions(second)
    # at most one request per object (here: one LIST per kind, no PATCH at all)
    assert client2.requests <= len(manifests), client2.requests
    assert our_writes(get(client, deployment_path(namespace))) == our_writes(dep_before)
    # objects no controller writes to keep their resourceVersion
    cm_path = "/api/v1/namespaces/%s/configmaps/otree-config" % namespace
    assert get(client, cm_path)["metadata"]["resourceVersion"] == cm_before["metadata"]["resourceVersion"]
    if not cluster.real:
        assert cluster.store.writes == writes_before, "a no-op re-apply wrote to the server"


def test_modify_one_field_changes_only_that_object(cluster, namespace):
    manifests = experiment_manifests(namespace)
    engine, client = cluster.engine()
    engine.run(manifests)
    changed = copy.deepcopy(manifests)
    dep = next(m for m in changed if m["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/example/otree:5.10.5"
    gen_before = get(client, deployment_path(namespace))["metadata"]["generation"]
    result = actions(cluster.engine()[0].run(changed))
    assert result.pop("Deployment/otree") == "configured"
    assert set(result.values()) == {"unchanged"}, result
    live = get(client, deployment_path(namespace))
    assert live["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":5.10.5")
    assert live["metadata"]["generation"] == gen_before + 1


def test_check_mode_uses_dry_run_and_stores_nothing(cluster, namespace):
    manifests = experiment_manifests(namespace)
    cluster.engine()[0].run(manifests)
    changed = copy.deepcopy(manifests)
    dep = next(m for m in changed if m["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/example/otree:9.9.9"
    changed.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "new-in-check-mode", "namespace": namespace}, "data": {"a": "b"}})
    engine, client = cluster.engine(check_mode=True)
    before = get(client, deployment_path(namespace))
    result = actions(engine.run(changed, diff=True))
    assert result["Deployment/otree"] == "configured"
    assert result["ConfigMap/new-in-check-mode"] == "created"
    after = get(client, deployment_path(namespace))
    assert our_writes(after) == our_writes(before)
    assert after["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":5.10.4")
    with pytest.raises(K8sError) as e:
        client.request("GET", "/api/v1/namespaces/%s/configmaps/new-in-check-mode" % namespace)
    assert e.value.status == 404


def test_diff_is_readable_and_hides_secrets(cluster, namespace):
    manifests = experiment_manifests(namespace)
    engine, _ = cluster.engine()
    results = engine.run(manifests, diff=True)
    secret = next(r for r in results if r["kind"] == "Secret" and r["name"] == "otree-secrets")
    text = repr(secret["diff"])
    assert "changeme" not in text and "Y2hhbmdlbWU=" not in text  # the value, plain or base64
    assert "<redacted" in text
    changed = copy.deepcopy(manifests)
    dep = next(m for m in changed if m["kind"] == "Deployment")
    dep["spec"]["replicas"] = 1
    dep["metadata"].setdefault("annotations", {})["note"] = "diff me"
    result = next(r for r in cluster.engine()[0].run(changed, diff=True) if r["kind"] == "Deployment")
    before, after = result["diff"]["before"], result["diff"]["after"]
    for side in (before, after):
        assert "managedFields" not in side["metadata"] and "resourceVersion" not in side["metadata"]
        assert "generation" not in side["metadata"] and "status" not in side
    assert "note" not in (before["metadata"].get("annotations") or {})
    assert after["metadata"]["annotations"]["note"] == "diff me"


def test_prune_keeps_data_unless_asked(cluster, namespace):
    manifests = experiment_manifests(namespace)
    cluster.engine()[0].run(manifests)
    kept = [m for m in manifests if m["kind"] not in ("ConfigMap", "PersistentVolumeClaim")]
    result = actions(cluster.engine()[0].run(kept, prune=True))
    assert result["ConfigMap/otree-config"] == "pruned"
    assert result["PersistentVolumeClaim/otree-data"] == "kept"
    client = cluster.client()
    assert get(client, "/api/v1/namespaces/%s/persistentvolumeclaims/otree-data" % namespace)
    result = actions(cluster.engine()[0].run(kept, prune=True, prune_protected=True))
    assert result["PersistentVolumeClaim/otree-data"] == "pruned"


def test_conflict_names_manager_and_field(cluster, namespace):
    manifests = experiment_manifests(namespace)
    cluster.engine()[0].run(manifests)
    client = cluster.client()
    client.request("PATCH", deployment_path(namespace), {"fieldManager": "kubectl-edit"},
                   {"spec": {"replicas": 2}}, "application/merge-patch+json")
    dep = next(m for m in manifests if m["kind"] == "Deployment")
    with pytest.raises(K8sError) as e:
        cluster.engine()[0].run([dep])
    assert e.value.status == 409
    assert "kubectl-edit" in str(e.value) and ".spec.replicas" in str(e.value)
    assert "force_conflicts" in str(e.value)
    result = actions(cluster.engine(force_conflicts=True)[0].run([dep]))
    assert result["Deployment/otree"] == "configured"
    assert get(client, deployment_path(namespace))["spec"]["replicas"] == 1


def test_invalid_object_names_the_field(cluster, namespace):
    manifests = experiment_manifests(namespace)
    ns = manifests[0]
    dep = copy.deepcopy(next(m for m in manifests if m["kind"] == "Deployment"))
    dep["metadata"]["name"] = "bad-selector"
    dep["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/name": "other"}
    with pytest.raises(K8sError) as e:
        cluster.engine()[0].run([ns, dep])
    assert e.value.status == 422
    assert "spec.template.metadata.labels" in str(e.value) and "bad-selector" in str(e.value)


def test_missing_namespace_says_what_to_do(cluster, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": namespace}}
    with pytest.raises(K8sError) as e:
        cluster.engine()[0].run([cm])
    assert e.value.status == 404
    assert "namespace %s does not exist" % namespace in str(e.value)


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.oforest.example.org"},
    "spec": {"group": "oforest.example.org", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "size": {"type": "integer"}}}}}}}]},
}


def test_crd_and_custom_resource_in_one_list(cluster, namespace):
    if not cluster.disposable:
        pytest.skip("creates a cluster-wide CRD; run by hand on a disposable cluster")
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    widget = {"apiVersion": "oforest.example.org/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 3}}
    # the custom resource first in the list: the engine still orders the CRD first
    result = actions(cluster.engine()[0].run([widget, ns, CRD]))
    assert result == {"Widget/w": "created", "Namespace/%s" % namespace: "created",
                      "CustomResourceDefinition/widgets.oforest.example.org": "created"}
    again = actions(cluster.engine()[0].run([widget, ns, CRD]))
    assert set(again.values()) == {"unchanged"}


def test_unknown_kind_names_the_api_version(cluster, namespace):
    engine, _ = cluster.engine(crd_timeout=1)
    bad = {"apiVersion": "example.invalid/v1", "kind": "Nope", "metadata": {"name": "n", "namespace": namespace}}
    with pytest.raises(K8sError) as e:
        engine.run([bad])
    assert "Nope" in str(e.value) and "example.invalid/v1" in str(e.value)


def test_bad_token_is_reported_as_credentials(cluster, namespace):
    if not cluster.disposable:
        pytest.skip("needs a deliberately wrong token for the real cluster")
    from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine
    engine = Engine(cluster.client(api_key="wrong"))
    with pytest.raises(K8sError) as e:
        engine.run(experiment_manifests(namespace))
    assert e.value.status == 401


def test_unreachable_server_names_its_address():
    from ansible_collections.oforest.otree.plugins.module_utils.k8s.client import Client
    from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine
    engine = Engine(Client(host="http://127.0.0.1:9", api_key="x"))
    with pytest.raises(K8sError) as e:
        engine.run([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}])
    assert "127.0.0.1:9" in str(e.value) and "cannot reach" in str(e.value)


def test_wait_for_rollout(standin, namespace):
    """STAND-IN: the control plane here has no node, so no pod ever runs on it."""
    manifests = experiment_manifests(namespace)
    engine, _ = standin.engine()
    engine.run(manifests, wait=True, wait_timeout=120)  # raises if not ready


def test_wait_reports_pods_not_ready(cluster, namespace):
    """Without a kubelet the Deployment never becomes available (real control plane, no node)."""
    if not cluster.disposable:
        pytest.skip("needs a cluster where no pod can run")
    engine, _ = cluster.engine()
    with pytest.raises(K8sError) as e:
        engine.run(experiment_manifests(namespace), wait=True, wait_timeout=20)
    assert "did not become ready" in str(e.value) and "0 of 1 replicas available" in str(e.value)


def test_check_mode_on_an_empty_cluster_predicts_everything(cluster, namespace):
    """A new namespace exists only in the dry run: the objects in it are reported, nothing is stored."""
    manifests = experiment_manifests(namespace)
    engine, client = cluster.engine(check_mode=True)
    result = engine.run(manifests)
    assert set(actions(result).values()) == {"created"} and len(result) == len(manifests)
    with pytest.raises(K8sError) as e:
        client.request("GET", "/api/v1/namespaces/%s" % namespace)
    assert e.value.status == 404
