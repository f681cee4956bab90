"""Fixtures for the engine's integration tests.

By default the tests talk to the STAND-IN Kubernetes API server (tests/k8s_standin, held to a
real server by test_standin_conformance.py). Set OFOREST_KUBECONFIG=/path/to/kubeconfig to run
the same tests against a real cluster (kind, k3d, MicroK8s): each test then works in its own
namespace `oforest-it-<random>` and removes it afterwards.
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

from tests.k8s_standin.server import ADMIN_TOKEN, start_background, tls_files  # noqa: E402

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
    def __init__(self, store=None, url=None, kubeconfig=None):
        self.store, self.url, self.kubeconfig = store, url, kubeconfig

    @property
    def real(self):
        return self.store is None

    def client(self, **kw):
        from ansible_collections.oforest.otree.plugins.module_utils.k8s_apply import Client
        if self.real:
            return Client(kubeconfig=self.kubeconfig, **kw)
        return Client(host=self.url, api_key=kw.pop("api_key", ADMIN_TOKEN), ca_cert=tls_files()[0], **kw)

    def engine(self, **kw):
        from ansible_collections.oforest.otree.plugins.module_utils.k8s_apply import Engine
        client = self.client()
        return Engine(client, **kw), client


@pytest.fixture
def cluster():
    if REAL:
        yield Cluster(kubeconfig=REAL)
        return
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
        except Exception:
            pass
