"""Runner pods under Pod Security `restricted`, judged by the REAL kube-apiserver v1.35.

The experiment's namespace enforces `restricted` (our renderer's Namespace, labels and all). The
runner's job pods and its manager pod run there, so the API server must admit them. What a real
gitlab-runner v18.6.0 and the chart 0.83.0 make of the values our role renders is the STAND-IN in
tests/integration/runner_pods.py (their sources named there); the pods go to the real server with
dryRun=All, where Pod Security admission judges them as it would on a lab's MicroK8s.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from tests.integration import runner_pods
from tests.unit.test_gitlab_runner_rbac import experiment_objects, rendered_objects

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))
from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import K8sError  # noqa: E402

ROLE = ROOT / "roles" / "gitlab_runner"
# chart 0.83.0 values.yaml: runners.config as the chart ships it (namespace and image only)
CHART_DEFAULT_CONFIG = '[[runners]]\n  [runners.kubernetes]\n    namespace = "%s"\n    image = "alpine"\n'


def role_values(namespace, **overrides):
    """values.yaml.j2 rendered with the role's defaults for one runner of experiment pgg."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    defaults.update(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()), gitlab_runner_token_set_at="")
    defaults.update(overrides)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string((ROLE / "templates" / "values.yaml.j2").read_text()).render(
        ansible_managed="test", gitlab_runner_item={"experiment": "pgg", "project": "lab/pgg"},
        gitlab_runner_ns=namespace, **defaults)
    return yaml.safe_load(text)


@pytest.fixture
def experiment_ns(cluster, namespace):
    """The experiment's namespace as our renderer makes it, with the runner's objects the role applies."""
    if cluster.real and not cluster.controlplane:
        pytest.skip("creates namespaces with our Pod Security labels: only on the control plane this run started")
    ns = experiment_objects(namespace)[0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    client = cluster.client()
    client.request("POST", "/api/v1/namespaces", body=ns)
    for obj in rendered_objects(namespace):
        if obj["kind"] == "ServiceAccount":
            client.request("POST", "/api/v1/namespaces/%s/serviceaccounts" % namespace, body=obj)
    return client, namespace


def admit(client, pod):
    """Ask the real API server to create `pod` without persisting it; returns None or its refusal."""
    try:
        client.request("POST", "/api/v1/namespaces/%s/pods" % pod["metadata"]["namespace"],
                       query={"dryRun": "All"}, body=pod)
    except K8sError as e:
        return "%s %s" % (e.status, e)
    return None


def test_job_pods_of_our_runner_are_admitted(experiment_ns):
    client, ns = experiment_ns
    pod = runner_pods.job_pod(role_values(ns))
    assert admit(client, pod) is None
    # what the admission saw: every container unprivileged, all capabilities dropped, seccomp by the patch
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert "ALL" in c["securityContext"]["capabilities"]["drop"], c["name"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]


def test_the_manager_pod_of_our_values_is_admitted(experiment_ns):
    client, ns = experiment_ns
    assert admit(client, runner_pods.manager_pod(role_values(ns), ns)) is None


def test_the_chart_defaults_are_refused_in_an_experiment_namespace(experiment_ns):
    """Why the role sets what it sets: the runner's and the chart's defaults, as shipped, are refused."""
    client, ns = experiment_ns
    values = role_values(ns)
    values["runners"]["config"] = CHART_DEFAULT_CONFIG % ns
    refused = admit(client, runner_pods.job_pod(values))
    assert refused and refused.startswith("403") and 'violates PodSecurity "restricted:latest"' in refused, refused
    for what in ("allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true",
                 "seccompProfile"):
        assert what in refused, (what, refused)
    values.pop("podSecurityContext")
    values.pop("securityContext")
    refused = admit(client, runner_pods.manager_pod(values, ns))
    assert refused and "seccompProfile" in refused and "runAsNonRoot" not in refused, refused


def test_without_the_feature_flag_the_seccomp_patch_is_not_applied(experiment_ns):
    """runner 18.6 has no seccomp key: the pod_spec patch is the only way, and it needs the flag."""
    client, ns = experiment_ns
    values = role_values(ns)
    assert "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION = true" in values["runners"]["config"]
    values["runners"]["config"] = values["runners"]["config"].replace(
        "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION = true", "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION = false")
    refused = admit(client, runner_pods.job_pod(values))
    assert refused and "seccompProfile" in refused and "capabilities" not in refused, refused


def test_the_stand_in_refuses_what_it_does_not_model():
    values = role_values("otree-pgg")
    values["runners"]["config"] = values["runners"]["config"].replace(
        'service_account = "otree-deployer"', 'service_account = "otree-deployer"\n        host_aliases = []')
    with pytest.raises(ValueError, match="host_aliases"):
        runner_pods.job_pod(values)
