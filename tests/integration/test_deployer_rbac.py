"""The deploy jobs' identity `otree-deployer`, asked of the REAL kube-apiserver v1.35 (RBAC and Pod
Security as a lab's MicroK8s runs them): `kubectl auth can-i --as` for every request the scaffolded
pipeline makes and for the list it must never have (tests/unit/test_gitlab_runner_rbac.py evaluates
the same lists in Python), then attempted objects, to write down precisely what the Role allows."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import time
import uuid

import pytest
import yaml

from tests.k8s.controlplane import binaries
from tests.unit.test_gitlab_runner_rbac import (
    FORBIDDEN, REGISTRY_PATH, experiment_objects, otree_render, pipeline_requests, policy_objects, rendered_objects)


@pytest.fixture(scope="module")
def deployer_ns(cluster):
    """An experiment's namespace (our renderer's Namespace and Secret) with the runner's objects."""
    if not cluster.controlplane:
        pytest.skip("creates RBAC objects: only on the control plane this run started")
    name = "oforest-rbac-%s" % uuid.uuid4().hex[:8]
    objs = experiment_objects(name, ("Namespace", "Secret")) + rendered_objects(name) + policy_objects()
    kubectl = [str(binaries() / "kubectl"), "--kubeconfig", cluster.kubeconfig]
    subprocess.run(kubectl + ["apply", "--server-side", "-f", "-"], input=yaml.safe_dump_all(objs), text=True,
                   check=True, capture_output=True)
    # the API server reads new admission policies, bindings and their parameters from its informers: wait
    # until a foreign image is refused before the tests start
    deadline = time.monotonic() + 60
    while not attempt((kubectl, name), deployment(pod_template(image="docker.io/library/busybox:1.36")))[1].count(
            "oforest-otree-deployer"):
        assert time.monotonic() < deadline, "the admission policy never took effect"
        time.sleep(1)
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


def pod_template(volumes=(), mounts=(), security=True, image=REGISTRY_PATH + ":1.0.0"):
    container = {"name": "x", "image": image, "volumeMounts": list(mounts)}
    spec = {"containers": [container], "volumes": list(volumes), "serviceAccountName": "otree",
            "automountServiceAccountToken": False}
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
    so whoever controls the pipeline can read the experiment's secrets through a pod of the
    experiment's image; a root pod passes as a Deployment (Pod Security only warns on templates) and is
    refused when its pods are made."""
    ok, said = attempt(deployer_ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                                     "spec": pod_template()["spec"]})
    assert not ok and "forbidden" in said and 'cannot create resource "pods"' in said, said
    ok, said = attempt(deployer_ns, deployment(pod_template(
        volumes=[{"name": "s", "secret": {"secretName": "otree-secrets"}}], mounts=[{"name": "s", "mountPath": "/s"}])))
    assert ok, said
    ok, said = attempt(deployer_ns, deployment(pod_template(security=False)))
    assert ok and 'violate PodSecurity "restricted:latest"' in said, said


def test_the_deployer_may_deploy_every_workload_the_pipeline_applies(deployer_ns):
    """Every pod-making object of the renderer (oTree, Postgres, the backup CronJob, the resetdb and
    backup Jobs), with a new tag of the registry path as the deploy job sets it, passes the cluster's
    admission policy as the deployer (and Pod Security: no warning)."""
    spec = otree_render.normalize_spec({"name": "pgg", "host": "pgg.example.org", "image": REGISTRY_PATH + ":1.0.0"})
    values, _ = otree_render.resolve_secrets(spec)
    objs = [o for o in otree_render.render(spec, values, image_override=REGISTRY_PATH + ":3f2a9c1")
            if o["kind"] in ("Deployment", "CronJob")]
    objs += [otree_render.resetdb_job(spec, "otree-resetdb-ci"), otree_render.backup_job(spec, "ci.dump", "backup-ci")]
    assert {o["kind"] for o in objs} == {"Deployment", "CronJob", "Job"} and len(objs) == 5
    for obj in objs:
        ok, said = attempt(deployer_ns, copy.deepcopy(obj))
        assert ok and "Warning" not in said, (obj["metadata"]["name"], said)


RIGHT_JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe"}, "spec": {"template": {
    "metadata": {}, "spec": dict(pod_template()["spec"], restartPolicy="Never")}}}


def job_with(**pod):
    job = copy.deepcopy(RIGHT_JOB)
    job["spec"]["template"]["spec"].update(pod)
    return job


def container(**fields):
    return [dict({"name": "x", "image": REGISTRY_PATH + ":1.0.0"}, **fields)]


REFUSED = [
    ("a foreign image", job_with(containers=container(image="docker.io/library/busybox:1.36")),
     r"may run only the experiment's images \(r.example.org/pgg; and docker.io/library/postgres:\d+\), "
     r"not docker.io/library/busybox:1.36"),
    ("another path on the same registry", job_with(containers=container(image=REGISTRY_PATH + "-other:1")),
     "not r.example.org/pgg-other:1"),
    ("a foreign init container", job_with(initContainers=container(name="wait", image="alpine:3")), "not alpine:3"),
    ("the runner's token in the environment", job_with(containers=container(env=[{"name": "T", "valueFrom": {
        "secretKeyRef": {"name": "gitlab-runner-token", "key": "runner-token"}}}])),
     r"may give pods only the experiment's Secret \(otree-secrets\)"),
    ("the runner's token as envFrom", job_with(containers=container(envFrom=[{"secretRef": {
        "name": "gitlab-runner-token"}}])), "only the experiment's Secret"),
    ("the runner's token as a volume", job_with(volumes=[{"name": "t", "secret": {"secretName": "gitlab-runner-token"}}]),
     "only the experiment's Secret"),
    ("the runner manager's identity", job_with(serviceAccountName="gitlab-runner"),
     r"only as the experiment's service accounts \(otree, postgres\), not gitlab-runner"),
    ("its own identity", job_with(serviceAccountName="otree-deployer"), "not otree-deployer"),
    ("the default identity", job_with(serviceAccountName=None), "not the default one"),
    ("a service account token", job_with(automountServiceAccountToken=True), "without a service account token"),
    ("a projected token", job_with(volumes=[{"name": "p", "projected": {"sources": [
        {"serviceAccountToken": {"path": "t"}}]}}]), "not p$"),
    ("the node's disk", job_with(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), "not h$"),
]


@pytest.mark.parametrize("what, obj, says", REFUSED, ids=[r[0] for r in REFUSED])
def test_the_admission_policy_refuses(deployer_ns, what, obj, says):
    """Each attempt changes one thing of a Job the policy admits (test_the_right_job_is_admitted)."""
    obj = copy.deepcopy(obj)
    pod = obj["spec"]["template"]["spec"]
    for k in [k for k, v in pod.items() if v is None]:
        del pod[k]
    ok, said = attempt(deployer_ns, obj)
    assert not ok and "ValidatingAdmissionPolicy 'oforest-otree-deployer'" in said, said
    assert re.search(says, said.strip(), re.M), said


def test_the_right_job_is_admitted_and_others_are_not_bound(deployer_ns, cluster):
    """The control for the refusals above; the same foreign Job is admitted for the cluster's admin
    (the policy acts on otree-deployer's requests only)."""
    ok, said = attempt(deployer_ns, copy.deepcopy(RIGHT_JOB))
    assert ok, said
    kubectl, name = deployer_ns
    foreign = REFUSED[0][1]
    out = subprocess.run(kubectl + ["create", "--dry-run=server", "-o", "name", "-n", name, "-f", "-"],
                         input=json.dumps(dict(foreign, metadata={"name": "admin-probe", "namespace": name})),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_controllers_and_other_namespaces_are_left_alone(deployer_ns):
    """The policy acts on otree-deployer's requests only: the Job controller still makes the pods of an
    admin's Job in the experiment's namespace, and a namespace without the policy's parameters (no
    runner there) is not touched at all (the API server looks the parameters up before it evaluates
    matchConditions, so a binding that denied on missing parameters would refuse every pod there)."""
    kubectl, name = deployer_ns
    plain = name + "-plain"
    subprocess.run(kubectl + ["create", "namespace", plain], check=True, capture_output=True)
    try:
        for ns in (name, plain):
            job = copy.deepcopy(RIGHT_JOB)   # Pod Security restricted holds, the image is foreign
            job["metadata"] = {"name": "admin-job", "namespace": ns}
            job["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1.36"
            job["spec"]["template"]["spec"]["serviceAccountName"] = "default"   # otree exists in neither
            out = subprocess.run(kubectl + ["create", "-f", "-"], input=json.dumps(job), capture_output=True,
                                 text=True)
            assert out.returncode == 0, out.stderr
            deadline = time.monotonic() + 60
            while not subprocess.run(kubectl + ["get", "pods", "-n", ns, "-l", "job-name=admin-job", "-o", "name"],
                                     capture_output=True, text=True).stdout.strip():
                assert time.monotonic() < deadline, "the Job controller made no pod in " + ns
                time.sleep(1)
    finally:
        subprocess.run(kubectl + ["delete", "namespace", plain, "--wait=false"], capture_output=True)
