"""STAND-IN for what a real gitlab-runner makes of the values our gitlab_runner role renders: the job
pod its kubernetes executor asks the API server for, and the manager pod of the Helm chart's
Deployment. The real runner cannot be built here (docs/testing.md: the module proxy refuses labkit) and the
chart's repository cannot be reached, so these two functions stand in for them; the pods they return
go to the REAL kube-apiserver, whose Pod Security admission judges them.

Held to the sources of the versions our role pins (gitlab_runner_chart_version 0.83.0, which ships
runner v18.6.0 per the chart's CHANGELOG.md):
- runner v18.6.0 common/config.go: KubernetesConfig (privileged, allow_privilege_escalation, cap_add,
  cap_drop, service_account, pod_security_context, *_container_security_context, pod_spec),
  KubernetesPodSecurityContext, KubernetesContainerSecurityContext; GetPodSecurityContext and
  GetContainerSecurityContext set no seccomp profile (a seccomp_profile key first appears in v18.11).
- runner v18.6.0 executors/kubernetes/kubernetes.go: preparePodConfig (containers build, helper,
  one per service), buildInitContainers / buildPermissionsInitContainer (init-permissions, the helper
  image, on by default), defaultCapDrop (NET_RAW on Linux), mergeCapabilitiesAddDrop (a container's
  own capabilities replace the merged list), getContainerSecurityContextEffectiveFlagValue (the
  container's privileged / allow_privilege_escalation, else the global key, else unset),
  getSecurityContextWithUIDGID (build, helper, services: user and group from the container key, else
  the pod key), getVolumes (repo, scripts, logs as emptyDir), applyPodSpecMerge (pod_spec patches,
  only with FF_USE_ADVANCED_POD_SPEC_CONFIGURATION, helpers/featureflags/flags.go, default false).
- chart 0.83.x templates/deployment.yaml: pod securityContext from .Values.podSecurityContext,
  the container's from .Values.securityContext, no init containers, volumes emptyDir (memory),
  projected secrets and a configMap; values.yaml defaults securityContext (allowPrivilegeEscalation
  false, readOnlyRootFilesystem false, runAsNonRoot true, privileged false, capabilities drop ALL)
  and podSecurityContext (runAsUser 100, fsGroup 65533), neither with a seccomp profile.
Anything of the configuration this model does not know is refused, never ignored.
"""
from __future__ import annotations

import copy
import tomllib

import yaml

HELPER_IMAGE = "registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v18.6.0"
CHART_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False, "runAsNonRoot": True,
                          "privileged": False, "capabilities": {"drop": ["ALL"]}}
CHART_POD_SECURITY_CONTEXT = {"runAsUser": 100, "fsGroup": 65533}

KNOWN_KUBERNETES_KEYS = {"namespace", "service_account", "image", "helper_image", "privileged",
                         "allow_privilege_escalation", "cap_add", "cap_drop", "cpu_request", "cpu_limit",
                         "memory_request", "memory_limit", "pod_security_context", "build_container_security_context",
                         "helper_container_security_context", "service_container_security_context",
                         "init_permissions_container_security_context", "pod_spec"}
POD_KEYS = {"fs_group": "fsGroup", "run_as_group": "runAsGroup", "run_as_user": "runAsUser",
            "run_as_non_root": "runAsNonRoot", "supplemental_groups": "supplementalGroups"}
CONTAINER_KEYS = {"run_as_non_root": "runAsNonRoot", "read_only_root_filesystem": "readOnlyRootFilesystem",
                  "run_as_user": "runAsUser", "run_as_group": "runAsGroup", "proc_mount": "procMount"}


def merge(base, patch, lists="replace"):
    """Helm's merge of user values into a chart's defaults (maps merged, lists and scalars replaced),
    or with lists="refuse" a strategic merge patch limited to maps (lists with merge keys are refused:
    the model does not pretend to know them)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, lists)
        elif isinstance(value, list) and lists == "refuse":
            raise ValueError("the stand-in does not model list merges (%s)" % key)
        else:
            out[key] = copy.deepcopy(value)
    return out


def runner_config(values):
    """The [[runners]] entry of the chart's runners.config (TOML), exactly one."""
    runners = tomllib.loads(values["runners"]["config"])["runners"]
    assert len(runners) == 1, "one runner per release"
    return runners[0]


def _container_context(k8s, key, pod_ctx, uid_gid=True):
    own = k8s.get(key, {})
    ctx = {}
    for flag, field in (("privileged", "privileged"), ("allow_privilege_escalation", "allowPrivilegeEscalation")):
        value = own.get(flag, k8s.get(flag))
        if value is not None:
            ctx[field] = value
    for toml_key, field in CONTAINER_KEYS.items():
        if toml_key in own:
            ctx[field] = own[toml_key]
    if uid_gid:
        for field in ("runAsUser", "runAsGroup"):
            if field not in ctx and field in pod_ctx:
                ctx[field] = pod_ctx[field]
    if "capabilities" in own:  # the container's own lists replace the merged defaults
        caps = {k: v for k, v in own["capabilities"].items() if v}
    else:
        add = list(k8s.get("cap_add", []))
        drop = [c for c in ["NET_RAW"] + list(k8s.get("cap_drop", [])) if c not in add]
        caps = {k: v for k, v in (("add", add), ("drop", drop)) if v}
    if caps:
        ctx["capabilities"] = caps
    unknown = set(own) - set(CONTAINER_KEYS) - {"privileged", "allow_privilege_escalation", "capabilities"}
    if unknown:
        raise ValueError("%s: keys the stand-in does not model: %s" % (key, sorted(unknown)))
    return ctx


def job_pod(values, job_image="python:3.12-slim"):
    """The pod the kubernetes executor creates for one job of the runner in `values`."""
    runner = runner_config(values)
    k8s = runner["kubernetes"]
    unknown = set(k8s) - KNOWN_KUBERNETES_KEYS
    if unknown:
        raise ValueError("[runners.kubernetes] keys the stand-in does not model: %s" % sorted(unknown))
    pod_ctx = {POD_KEYS[k]: v for k, v in k8s.get("pod_security_context", {}).items() if k in POD_KEYS}
    unknown = set(k8s.get("pod_security_context", {})) - set(POD_KEYS)
    if unknown:
        raise ValueError("pod_security_context keys the stand-in does not model: %s" % sorted(unknown))
    helper = k8s.get("helper_image", HELPER_IMAGE)
    mounts = [{"name": n, "mountPath": p} for n, p in (("repo", "/builds"), ("scripts", "/scripts-1-1"),
                                                     ("logs", "/logs-1-1"))]
    resources = {"requests": {"cpu": k8s.get("cpu_request", "0"), "memory": k8s.get("memory_request", "0")},
                 "limits": {"cpu": k8s.get("cpu_limit", "0"), "memory": k8s.get("memory_limit", "0")}}
    spec = {
        "serviceAccountName": k8s.get("service_account", "default"),
        "restartPolicy": "Never",
        "initContainers": [{"name": "init-permissions", "image": helper, "command": ["sh", "-c", "touch /logs-1-1/x"],
                            "volumeMounts": mounts,
                            "securityContext": _container_context(
                                k8s, "init_permissions_container_security_context", pod_ctx, uid_gid=False)}],
        "containers": [
            {"name": "build", "image": k8s.get("image", job_image), "command": ["sh", "-c", "sleep 1"],
             "volumeMounts": mounts, "resources": resources,
             "securityContext": _container_context(k8s, "build_container_security_context", pod_ctx)},
            {"name": "helper", "image": helper, "command": ["sh", "-c", "sleep 1"], "volumeMounts": mounts,
             "securityContext": _container_context(k8s, "helper_container_security_context", pod_ctx)},
        ],
        "volumes": [{"name": n, "emptyDir": {}} for n in ("repo", "scripts", "logs")],
    }
    if pod_ctx:
        spec["securityContext"] = pod_ctx
    if runner.get("feature_flags", {}).get("FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"):
        for patch in k8s.get("pod_spec", []):
            if patch.get("patch_type", "strategic") != "strategic":
                raise ValueError("the stand-in models only strategic pod_spec patches")
            spec = merge(spec, yaml.safe_load(patch["patch"]), lists="refuse")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "runner-x-project-1-concurrent-0-", "namespace": k8s["namespace"]},
            "spec": spec}


def manager_pod(values, namespace):
    """The runner manager's pod as the chart's Deployment templates it from `values`."""
    spec = {
        "serviceAccountName": values.get("serviceAccount", {}).get("name", "default"),
        "securityContext": merge(CHART_POD_SECURITY_CONTEXT, values.get("podSecurityContext", {})),
        "containers": [{"name": "gitlab-runner", "image": "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v18.6.0",
                        "command": ["/usr/bin/dumb-init", "--", "/bin/bash", "/configmaps/entrypoint"],
                        "securityContext": merge(CHART_SECURITY_CONTEXT, values.get("securityContext", {})),
                        "volumeMounts": [{"name": "runner-secrets", "mountPath": "/secrets"},
                                         {"name": "etc-gitlab-runner",
                                          "mountPath": "/home/gitlab-runner/.gitlab-runner"},
                                         {"name": "configmaps", "mountPath": "/configmaps"}]}],
        "volumes": [{"name": "runner-secrets", "emptyDir": {"medium": "Memory"}},
                    {"name": "etc-gitlab-runner", "emptyDir": {"medium": "Memory"}},
                    {"name": "configmaps", "configMap": {"name": "gitlab-runner"}}],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "gitlab-runner-", "namespace": namespace},
            "spec": spec}
