"""Fixtures for the engine's integration tests.

`cluster` is a REAL Kubernetes control plane: upstream etcd, kube-apiserver, controller-manager and
scheduler v1.35 built from tests/k8s/go.mod and started once per session (tests/k8s/controlplane.py),
or the cluster that OFOREST_KUBECONFIG=/path/to/kubeconfig names (kind, k3d, MicroK8s). Each test
works in its own namespace `oforest-it-<random>` and removes it afterwards.

`standin` is the STAND-IN API server (tests/standins/k8s_api, held to a real server's recordings by
test_standin_conformance.py). It serves only what a real control plane without a node cannot: a
Deployment that becomes Available (its kubelet stand-in marks pods ready).
"""
from __future__ import annotations

import copy
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the collection's module_utils, importable as ansible_collections.oforest.otree...
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from tests.k8s.controlplane import ControlPlane, binaries  # noqa: E402
from tests.standins.k8s_api.server import ADMIN_TOKEN, start_background, tls_files  # noqa: E402

REAL = os.environ.get("OFOREST_KUBECONFIG")
TRANSCRIPT = ROOT / "tests" / "fixtures" / "k8s-api-transcript" / "02-apply-create-reapply.json"


def experiment_manifests(namespace):
    """The manifests of one oTree experiment, as sent to the real server in the recording (13 objects)."""
    seen, out = set(), []
    for step in json.loads(TRANSCRIPT.read_text()):
        req = step["request"]
        if req["method"] != "PATCH" or "noncanonical" in req["path"] or req["path"] in seen:
            continue
        seen.add(req["path"])
        obj = copy.deepcopy(req["body"])
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = namespace
        else:
            obj["metadata"]["namespace"] = namespace
        out.append(obj)
    for obj in out:  # references to the namespace inside specs (RoleBinding subjects)
        for subject in obj.get("subjects", []) or []:
            if "namespace" in subject:
                subject["namespace"] = namespace
    return out


class Cluster:
    def __init__(self, store=None, url=None, kubeconfig=None, controlplane=None):
        self.store, self.url, self.kubeconfig = store, url, kubeconfig
        self.controlplane = controlplane

    @property
    def real(self):
        return self.store is None

    @property
    def disposable(self):
        """Ours alone (the stand-in or the control plane this session started): cluster-wide objects
        such as CRDs may be created."""
        return not self.real or self.controlplane is not None

    def client(self, **kw):
        from ansible_collections.oforest.otree.plugins.module_utils.k8s.client import Client
        if self.real:
            if "api_key" in kw and self.controlplane:  # a deliberate credential, same server and CA
                return Client(host=self.controlplane.url, ca_cert=str(self.controlplane.ca), **kw)
            return Client(kubeconfig=self.kubeconfig, **kw)
        return Client(host=self.url, api_key=kw.pop("api_key", ADMIN_TOKEN), ca_cert=tls_files()[0], **kw)

    def engine(self, **kw):
        from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine
        client = self.client()
        return Engine(client, **kw), client


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if REAL:
        yield Cluster(kubeconfig=REAL)
        return
    with ControlPlane(binaries(), tmp_path_factory.mktemp("controlplane")) as cp:
        yield Cluster(kubeconfig=str(cp.kubeconfig), controlplane=cp)


@pytest.fixture
def standin():
    server, url = start_background(kubelet=True)
    try:
        yield Cluster(store=server.store, url=url)
    finally:
        server.shutdown()


@pytest.fixture
def namespace(cluster):
    name = "oforest-it-%s" % uuid.uuid4().hex[:8]
    yield name
    if cluster.real:
        client = cluster.client()
        try:
            client.request("DELETE", "/api/v1/namespaces/%s" % name)
        except Exception:  # the test may not have created it
            pass
