"""Least privilege of an experiment's deploy jobs: the gitlab_runner role's Role rules evaluated with
Kubernetes' RBAC semantics (apiGroups x resources x verbs, '*' wildcards; a Role grants only in its
own namespace) for every request a deploy job makes (allowed) and a list it must never have (denied).
The same questions go to a real API server with `kubectl auth can-i --as=system:serviceaccount:...`
in tests/integration/test_deployer_rbac.py."""
import base64
import json
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))
from ansible_collections.oforest.otree.plugins.module_utils import otree_render  # noqa: E402

ROLE = ROOT / "roles" / "gitlab_runner"
RULES = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
NS = "otree-pgg"


def allows(rules, verb, group, resource):
    for r in rules:
        if r.get("resourceNames"):
            continue
        if ((group in r["apiGroups"] or "*" in r["apiGroups"]) and (resource in r["resources"] or "*" in r["resources"])
                and (verb in r["verbs"] or "*" in r["verbs"])):
            return True
    return False


def rendered_objects(namespace=NS):
    """The role's runner-objects.yaml.j2 for one experiment namespace (Secret, ServiceAccounts, Roles,
    RoleBindings), rendered as the role renders it."""
    env = jinja2.Environment()
    env.filters["to_json"] = json.dumps
    env.filters["b64encode"] = lambda s: base64.b64encode(s.encode()).decode()
    text = env.from_string((ROLE / "templates" / "runner-objects.yaml.j2").read_text()).render(
        ansible_managed="test", gitlab_runner_ns=namespace, **dict(
            RULES, gitlab_runner_token_value="glrt-x", gitlab_runner_image_repository=REGISTRY_PATH,
            gitlab_runner_service_images=sorted(postgres_images())))
    return [o for o in yaml.safe_load_all(text) if o]


REGISTRY_PATH = "r.example.org/pgg"   # the sample experiment's image is r.example.org/pgg:1.0.0


def policy_objects():
    """The role's deployer-policy.yaml.j2: the cluster's admission policy and its binding."""
    text = jinja2.Environment().from_string((ROLE / "templates" / "deployer-policy.yaml.j2").read_text()).render(
        ansible_managed="test", gitlab_runner_policy_name=RULES["gitlab_runner_policy_name"])
    return [o for o in yaml.safe_load_all(text) if o]


def postgres_images():
    """The images of the sample experiment's Postgres Deployment, as the role reads them from the cluster."""
    [pg] = [o for o in experiment_objects(NS, ("Deployment",)) if o["metadata"]["name"] == "postgres"]
    pod = pg["spec"]["template"]["spec"]
    return {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}


def experiment_objects(namespace, kinds=("Namespace",)):
    """The renderer's objects of kinds `kinds` for a sample experiment, moved into `namespace`."""
    spec = otree_render.normalize_spec({"name": "pgg", "host": "pgg.example.org", "image": "r.example.org/pgg:1.0.0"})
    values, _ = otree_render.resolve_secrets(spec)
    objs = [o for o in otree_render.render(spec, values) if o["kind"] in kinds]
    for o in objs:
        o["metadata"]["name" if o["kind"] == "Namespace" else "namespace"] = namespace
    return objs


def pipeline_requests():
    """Every (verb, apiGroup, resource) a deploy job sends: server-side apply of the experiment's
    manifests (the renderer's, minus the Namespace and the Secret the Ansible role owns), rollout
    status, logs, and the manual backup / resetdb Jobs."""
    spec = otree_render.normalize_spec({"name": "pgg", "host": "pgg.example.org", "image": "r.example.org/pgg:1.0.0"})
    values, _ = otree_render.resolve_secrets(spec)
    objs = [o for o in otree_render.render(spec, values) if o["kind"] not in ("Namespace", "Secret")]
    plural = {"Deployment": "deployments", "Service": "services", "ServiceAccount": "serviceaccounts",
              "PersistentVolumeClaim": "persistentvolumeclaims", "NetworkPolicy": "networkpolicies",
              "CronJob": "cronjobs", "Ingress": "ingresses", "Job": "jobs"}
    reqs = set()
    for o in objs:
        group = o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else ""
        for verb in ("get", "create", "patch"):
            reqs.add((verb, group, plural[o["kind"]]))
    reqs |= {("get", "apps", "deployments"), ("watch", "apps", "deployments"), ("list", "apps", "replicasets"),
             ("list", "", "pods"), ("get", "", "pods/log"),
             ("create", "batch", "jobs"), ("get", "batch", "jobs"), ("watch", "batch", "jobs"),
             ("delete", "batch", "jobs")}
    return sorted(reqs)


FORBIDDEN = [
    ("get", "", "secrets"), ("list", "", "secrets"), ("patch", "", "secrets"), ("delete", "", "secrets"),
    ("delete", "", "persistentvolumeclaims"), ("delete", "apps", "deployments"), ("delete", "", "services"),
    ("create", "", "pods/exec"), ("create", "", "pods/portforward"), ("create", "", "pods"),
    ("create", "", "serviceaccounts/token"), ("create", "", "namespaces"), ("delete", "", "namespaces"),
    ("create", "rbac.authorization.k8s.io", "roles"), ("patch", "rbac.authorization.k8s.io", "rolebindings"),
    ("bind", "rbac.authorization.k8s.io", "roles"), ("escalate", "rbac.authorization.k8s.io", "roles"),
    ("list", "", "nodes"), ("create", "", "persistentvolumes"), ("patch", "", "configmaps"),
]


def test_the_pipeline_needs_are_known():
    reqs = pipeline_requests()
    kinds = {r for _, _, r in reqs}
    assert {"deployments", "services", "persistentvolumeclaims", "ingresses", "cronjobs", "networkpolicies"} <= kinds
    assert "secrets" not in kinds and "namespaces" not in kinds


@pytest.mark.parametrize("verb, group, resource", pipeline_requests())
def test_deploy_job_may(verb, group, resource):
    assert allows(RULES["gitlab_runner_deployer_rules"], verb, group, resource)


@pytest.mark.parametrize("verb, group, resource", FORBIDDEN)
def test_deploy_job_may_not(verb, group, resource):
    assert not allows(RULES["gitlab_runner_deployer_rules"], verb, group, resource)


def test_no_wildcards_and_nothing_cluster_wide():
    for rules in (RULES["gitlab_runner_deployer_rules"], RULES["gitlab_runner_manager_rules"]):
        for r in rules:
            assert "*" not in r["apiGroups"] + r["resources"] + r["verbs"]
    objs = rendered_objects()
    assert {o["kind"] for o in objs} == {"Secret", "ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
    assert all(o["metadata"]["namespace"] == NS for o in objs)
    deployer = [o for o in objs if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "otree-deployer"][0]
    assert deployer["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "otree-deployer"}
    assert deployer["subjects"] == [{"kind": "ServiceAccount", "name": "otree-deployer", "namespace": NS}]
    # the manager may run job pods, but not touch the experiment's workloads or data
    manager = RULES["gitlab_runner_manager_rules"]
    assert allows(manager, "create", "", "pods") and allows(manager, "create", "", "pods/exec")
    for verb, group, resource in [("patch", "apps", "deployments"), ("delete", "", "persistentvolumeclaims"),
                                  ("create", "rbac.authorization.k8s.io", "roles")]:
        assert not allows(manager, verb, group, resource)


def test_the_policy_parameters_name_what_the_experiments_own_pods_use():
    """The admission policy's parameters (ConfigMap otree-deployer-policy) against every pod template the
    renderer makes: its service accounts, its Secret, its images (the registry path and Postgres'), no
    token. What the real API server does with them: tests/integration/test_deployer_rbac.py."""
    [params] = [o["data"] for o in rendered_objects() if o["kind"] == "ConfigMap"]
    assert params["repositories"] == REGISTRY_PATH
    images, accounts, secrets = (set(params[k].split()) for k in ("images", "serviceAccounts", "secrets"))
    assert images == postgres_images() and images
    spec = otree_render.normalize_spec({"name": "pgg", "host": "pgg.example.org", "image": "r.example.org/pgg:1.0.0"})
    values, _ = otree_render.resolve_secrets(spec)
    templates = []
    for o in otree_render.render(spec, values) + [otree_render.resetdb_job(spec, "r"),
                                                   otree_render.backup_job(spec, "d.dump", "b")]:
        if o["kind"] == "CronJob":
            templates.append(o["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif o["kind"] in ("Deployment", "Job"):
            templates.append(o["spec"]["template"]["spec"])
    assert len(templates) >= 3
    for pod in templates:
        assert pod["serviceAccountName"] in accounts and pod["automountServiceAccountToken"] is False
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["image"] in images or c["image"].startswith(REGISTRY_PATH + ":"), c["image"]
            refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})]
            refs += [f["secretRef"]["name"] for f in c.get("envFrom", []) if "secretRef" in f]
            assert set(refs) <= secrets
        for v in pod.get("volumes", []):
            assert set(v) - {"name"} <= {"persistentVolumeClaim", "emptyDir", "configMap", "downwardAPI", "secret"}
