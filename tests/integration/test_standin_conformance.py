"""Hold the STAND-IN Kubernetes API server to a real one.

Replays every request recorded from a real Kubernetes v1.35.4 API server
(tests/fixtures/k8s-api-transcript/, two independent recordings, made by
tests/k8s/record_transcript.py) against a fresh stand-in and requires the same status codes and
the observable fields the engine relies on:
- resourceVersion: the same placeholder must map to the same value, a new placeholder to a new
  value (unchanged on a no-op apply, bumped on a change), absent where the server sent none;
- metadata.generation, managedFields managers (manager, operation, subresource);
- Secret data (stringData becoming data);
- Status bodies: code, reason, message, details.causes (reason, field); text/plain 404 bodies;
- Deployment status conditions (type, status, reason) and the fields present;
- list item names.
The stand-in's clock is advanced as the recording's steps say ("1.2s later", ">2 s after"), so
the one-second managedFields time behaves as recorded without sleeping.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.standins.k8s_api.server import ADMIN_TOKEN, start_background, tls_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s-api-transcript"
RECORDINGS = sorted(FIXTURES.glob("[01]*.json")) + sorted((FIXTURES / "second-recording").glob("[01]*.json"))


# Recorded steps the stand-in does not reproduce, each with the reason. Nothing the engine relies
# on is in this list: the engine never POSTs or asks for SelfSubjectAccessReviews, and the number of
# status writes a CRD gets before Established is timing the recorder itself saw differ.
NOT_COVERED = {
    ("09-list-delete-prune.json", "POST (create, not apply)"): "the engine creates with apply only",
    ("06-invalid-objects.json", "POST (create, not apply)"): "the engine creates with apply only",
    ("10-auth.json", "SelfSubjectAccessReview"): "authorization reviews are the runner issue's RBAC test",
    ("08-crd-established.json", "GET CRD once Established"): "the count of CRD status writes is timing",
    ("03-ssa-change-field.json", "GET 3 s later"): "the count of controller status writes is timing",
    ("09-list-delete-prune.json", "GET immediately after Foreground delete"): "garbage-collector write timing",
    ("09-list-delete-prune.json", "LIST ReplicaSets right after Background delete"): "garbage-collector timing",
    ("11-deployment-status.json", "LIST"): "as below",
    ("11-deployment-status.json", "GET"): "the status progression (NewReplicaSetCreated, ReplicaFailure, "
                                          "ProgressDeadlineExceeded) is not simulated; rollout waits are held to "
                                          "the first recording's 11-rollout-status",
}


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


def advance_for(step_text, clock):
    """Move the stand-in's clock as the recorded step did; its controllers (status writes, garbage
    collection, serving a new CRD's group) act on that clock, so no real time needs to pass."""
    text = step_text.lower()
    m = re.search(r"(\d+(?:\.\d+)?)\s*s\b", text.replace("~", ""))
    if re.search(r"(later|after|>)", text) and m:
        clock.t += float(m.group(1)) + 0.1
    else:
        clock.t += 0.01


def send(url, req):
    query = "&".join("%s=%s" % (k, urllib.request.quote(str(v), safe="")) for k, v in (req.get("query") or {}).items())
    headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
    headers.update({k.lower(): v for k, v in (req.get("extra_headers") or {}).items()})
    out = {}
    if "content-type" in headers:
        out["Content-Type"] = headers["content-type"]
    if "authorization" in headers:
        out["Authorization"] = headers["authorization"]  # e.g. the recorded bad bearer token
    elif req.get("client_certificate", True) is not False and "without client certificate" not in req.get("_step", ""):
        out["Authorization"] = "Bearer " + ADMIN_TOKEN  # the recorder's admin client certificate
    if "impersonate-user" in headers:
        out["Impersonate-User"] = headers["impersonate-user"]
    body = req.get("body")
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url + req["path"] + ("?" + query if query else ""), data=data,
                               method=req["method"], headers=out)
    import ssl
    context = ssl.create_default_context(cafile=tls_files()[0])
    try:
        with urllib.request.urlopen(r, timeout=10, context=context) as f:
            status, raw, ctype = f.status, f.read().decode(), f.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in ctype else raw)


def managers(obj):
    return [(m.get("manager"), m.get("operation"), m.get("subresource"))
            for m in (obj.get("metadata") or {}).get("managedFields") or []]


class RvMap:
    """Placeholder <-> value bijection (per object in the first recording, per file in the second)."""

    def __init__(self):
        self.fwd, self.back = {}, {}

    def check(self, scope, placeholder, value, where):
        key = (scope, placeholder)
        if key in self.fwd:
            assert self.fwd[key] == value, "%s: %s was %s before, now %s (recorded: unchanged)" % (
                where, placeholder, self.fwd[key], value)
        else:
            assert (scope, value) not in self.back, "%s: recorded a new resourceVersion %s, stand-in kept %s" % (
                where, placeholder, value)
            self.fwd[key] = value
            self.back[(scope, value)] = placeholder


def compare(step, recorded, actual, rvmap, per_object, gens):
    where = step["step"]
    if isinstance(recorded, str):
        assert actual == recorded, where
        return
    assert isinstance(actual, dict), "%s: expected a JSON body, got %r" % (where, actual)
    if recorded.get("kind") == "Status":
        for k in ("status", "reason", "code", "message"):
            assert actual.get(k) == recorded.get(k), "%s: Status.%s" % (where, k)
        rc = [(c.get("reason"), c.get("field")) for c in (recorded.get("details") or {}).get("causes") or []]
        ac = [(c.get("reason"), c.get("field")) for c in (actual.get("details") or {}).get("causes") or []]
        assert ac == rc, "%s: Status causes" % where
        return
    assert actual.get("kind") == recorded.get("kind"), where
    if "items" in recorded:
        def names(items):  # generated names (ReplicaSet hash, Pod suffix) compared by their stem
            return [re.sub(r"-[a-z0-9]{5,10}$", "-*", i["metadata"]["name"]) if recorded["kind"] in
                    ("ReplicaSetList", "PodList") else i["metadata"]["name"] for i in items]
        if recorded["kind"] == "PodList":  # generated pod names are placeholders there
            assert len(actual["items"]) == len(recorded["items"]), where
            assert [i["status"]["phase"] for i in actual["items"]] == [i["status"]["phase"] for i in recorded["items"]]
        else:
            assert sorted(set(names(actual["items"]))) == sorted(set(names(recorded["items"]))), where
        return
    if "resources" in recorded or "versions" in recorded or "groups" in recorded:
        return  # discovery documents are served from the recording itself
    meta, ameta = recorded.get("metadata") or {}, actual.get("metadata") or {}
    scope = step["request"]["path"] if per_object else "file"
    if "resourceVersion" in meta:
        assert "resourceVersion" in ameta, "%s: resourceVersion missing" % where
        rvmap.check(scope, meta["resourceVersion"], ameta["resourceVersion"], where)
    else:
        assert "resourceVersion" not in ameta, "%s: the real server sent no resourceVersion" % where
    # generation: the same steps (deltas) from the first time the file shows the object
    if "generation" in meta and step["request"]["method"] != "DELETE":
        assert "generation" in ameta, "%s: generation missing" % where
        base = gens.setdefault(step["request"]["path"], ameta["generation"] - meta["generation"])
        assert ameta["generation"] - meta["generation"] == base, "%s: generation %s, recorded %s (offset %s)" % (
            where, ameta["generation"], meta["generation"], base)
    elif "generation" not in meta:
        assert "generation" not in ameta, "%s: the real server sent no generation" % where
    if "managedFields" in meta and step["request"]["method"] != "DELETE":
        assert sorted(managers(actual), key=str) == sorted(managers(recorded), key=str), \
            "%s: managedFields managers" % where
    assert ("deletionTimestamp" in ameta) == ("deletionTimestamp" in meta), "%s: deletionTimestamp" % where
    if recorded.get("kind") == "Secret":
        assert actual.get("data") == recorded.get("data") and "stringData" not in actual, "%s: Secret data" % where
    if recorded.get("kind") == "Namespace":
        assert (actual.get("status") or {}).get("phase") == (recorded.get("status") or {}).get("phase"), where
    # status as a GET sees it (in an apply response it depends on how far the controller got)
    if recorded.get("kind") in ("Deployment", "StatefulSet") and recorded.get("status") and \
            step["request"]["method"] == "GET":
        rs, as_ = recorded["status"], actual.get("status") or {}
        assert sorted(k for k in rs if k != "conditions") == sorted(k for k in as_ if k != "conditions"), \
            "%s: status fields" % where
        assert [(c["type"], c["status"], c["reason"]) for c in rs.get("conditions", [])] == \
            [(c["type"], c["status"], c["reason"]) for c in as_.get("conditions", [])], "%s: conditions" % where


@pytest.fixture(scope="module")
def sessions():
    """One stand-in per recording: each recording's files were made in order on one server."""
    made = {}
    yield made
    for value in made.values():
        if isinstance(value, tuple):
            value[0].shutdown()


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: "%s/%s" % (p.parent.name, p.name))
def test_standin_replays_recording(path, sessions):
    steps = [s for s in json.loads(path.read_text()) if "request" in s and "response" in s]
    assert steps, "no recorded requests in %s" % path
    # 09b was recorded with kube-controller-manager stopped: its own stand-in without controllers
    session = path.parent if "without-controller-manager" not in path.name else path
    if session not in sessions:
        clock = Clock()
        server, url = start_background(kubelet=False, clock=clock, controllers=session == path.parent)
        sessions[session] = (server, url, clock, RvMap())
    _server, url, clock, _ = sessions[session]
    rvmap = RvMap()  # placeholders are numbered per file in both recordings
    per_object = path.parent.name != "second-recording"  # ... and per object in the first
    # Each file starts from the state the real server had then: objects a file first meets in an
    # existing state (GET 200, apply 200) are seeded as recorded; every later step is compared.
    seen = set()
    for step in steps:
        req, resp = step["request"], step["response"]
        if req["path"] in seen or not isinstance(resp["body"], dict) or "metadata" not in resp["body"]:
            continue
        seen.add(req["path"])
        if resp["status"] == 200 and req["method"] in ("GET", "PATCH") and "items" not in resp["body"] \
                and (req.get("query") or {}).get("dryRun") != "All":
            _server.store.seed(req["path"], resp["body"])
    gens = {}
    for step in steps:
        reason = next((why for (name, text), why in NOT_COVERED.items()
                       if name == path.name and text in step["step"]), None)
        if reason:
            continue
        advance_for(step["step"], clock)
        status, body = send(url, dict(step["request"], _step=step["step"]))
        assert status == step["response"]["status"], "%s: status %s, recorded %s: %s" % (
            step["step"], status, step["response"]["status"], str(body)[:400])
        compare(step, step["response"]["body"], body, rvmap, per_object, gens)
