"""The deploy jobs' identity `otree-deployer`, asked of the REAL kube-apiserver v1.35 (RBAC and Pod
Security as a lab's MicroK8s runs them): `kubectl auth can-i --as` for every request the scaffolded
pipeline makes and for the list it must never have (tests/unit/test_gitlab_runner_rbac.py evaluates
the same lists in Python), then attempted objects, to write down precisely what the Role allows."""
from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml

from tests.k8s.controlplane import binaries
from tests.unit.test_gitlab_runner_rbac import FORBIDDEN, experiment_objects, pipeline_requests, rendered_objects


@pytest.fixture(scope="module")
def deployer_ns(cluster):
    """An experiment's namespace (our renderer's Namespace and Secret) with the runner's objects."""
    if not cluster.controlplane:
        pytest.skip("creates RBAC objects: only on the control plane this run started")
    name = "oforest-rbac-%s" % uuid.uuid4().hex[:8]
    objs = experiment_objects(name, ("Namespace", "Secret")) + rendered_objects(name)
    kubectl = [str(binaries() / "kubectl"), "--kubeconfig", cluster.kubeconfig]
    subprocess.run(kubectl + ["apply", "--server-side", "-f", "-"], input=yaml.safe_dump_all(objs), text=True,
                   check=True, capture_output=True)
    yield kubectl, name
    subprocess.run(kubectl + ["delete", "namespace", name, "--wait=false"], capture_output=True)


def can_i(deployer_ns, verb, group, resource, ns=None):
    kubectl, name = deployer_ns
    resource, _, sub = resource.partition("/")  # kubectl reads TYPE/NAME: a subresource has its own flag
    res = resource + ("." + group if group else "")
    out = subprocess.run(kubectl + ["auth", "can-i", verb, res, "-n", ns or name,
                                    "--as", "system:serviceaccount:%s:otree-deployer" % name]
                         + (["--subresource", sub] if sub else []), capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.parametrize("verb, group, resource", pipeline_requests())
def test_the_api_server_lets_the_deployer(deployer_ns, verb, group, resource):
    assert can_i(deployer_ns, verb, group, resource) == "yes"


@pytest.mark.parametrize("verb, group, resource", FORBIDDEN)
def test_the_api_server_refuses_the_deployer(deployer_ns, verb, group, resource):
    assert can_i(deployer_ns, verb, group, resource) == "no"


def test_nothing_outside_its_namespace(deployer_ns):
    for ns in ("kube-system", "default"):
        assert can_i(deployer_ns, "get", "apps", "deployments", ns=ns) == "no"
        assert can_i(deployer_ns, "create", "batch", "jobs", ns=ns) == "no"


def attempt(deployer_ns, obj):
    """Create `obj` as otree-deployer, server-side dry run: (accepted, what the server said)."""
    kubectl, name = deployer_ns
    obj["metadata"]["namespace"] = name
    out = subprocess.run(kubectl + ["create", "--dry-run=server", "-o", "name", "-f", "-",
                                    "--as", "system:serviceaccount:%s:otree-deployer" % name],
                         input=json.dumps(obj), capture_output=True, text=True)
    return out.returncode == 0, out.stdout + out.stderr


def pod_template(volumes=(), mounts=(), security=True):
    container = {"name": "x", "image": "r.example.org/pgg:1.0.0", "volumeMounts": list(mounts)}
    spec = {"containers": [container], "volumes": list(volumes)}
    if security:
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001,
                                   "seccompProfile": {"type": "RuntimeDefault"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {"metadata": {"labels": {"app": "x"}}, "spec": spec}


def deployment(template):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}}


def test_what_the_deployer_can_and_cannot_start(deployer_ns):
    """README, "What that identity may do, precisely": it may not start a bare pod or read the
    Secret, but a Deployment it creates may mount the experiment's Secret (the oTree Deployment must),
    so whoever controls the pipeline can read the experiment's secrets through a pod; a root pod
    passes as a Deployment (Pod Security only warns on templates) and is refused when its pods are
    made."""
    ok, said = attempt(deployer_ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                                     "spec": pod_template()["spec"]})
    assert not ok and "forbidden" in said and 'cannot create resource "pods"' in said, said
    ok, said = attempt(deployer_ns, deployment(pod_template(
        volumes=[{"name": "s", "secret": {"secretName": "otree-secrets"}}], mounts=[{"name": "s", "mountPath": "/s"}])))
    assert ok, said
    ok, said = attempt(deployer_ns, deployment(pod_template(security=False)))
    assert ok and 'violate PodSecurity "restricted:latest"' in said, said
