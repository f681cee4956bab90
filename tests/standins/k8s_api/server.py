"""STAND-IN Kubernetes API server for the tests (not a Kubernetes API server).

No registry we reach ships kube-apiserver, so the engine's integration tests talk HTTP to this
stand-in. It implements only what `k8s_apply` uses, and is held to the behaviour recorded from a
real Kubernetes v1.35.4 API server (tests/fixtures/k8s-api-transcript/, replayed by
tests/integration/test_standin_conformance.py):

- discovery (/api, /api/v1, /apis, /apis/G/V, /version) served from the recorded documents, plus
  the groups of CustomResourceDefinitions applied here;
- server-side apply (PATCH application/apply-patch+yaml) with field managers, field ownership in
  managedFields (FieldsV1), conflicts (409 with FieldManagerConflict causes) and `force`;
  merge-patch (PATCH application/merge-patch+json) as an Update operation that takes ownership;
- `dryRun=All` (nothing stored; a new object has no resourceVersion);
- a global resourceVersion counter; a no-op apply keeps resourceVersion (also when only the
  manager's managedFields time would change: a Secret applied with stringData, a non-canonical
  quantity); generation for the kinds that have it; the recorded quirk that a PVC is bumped once by
  its first re-apply;
- a controller-manager stand-in that writes Deployment/StatefulSet status (bumping
  resourceVersion, manager kube-controller-manager, subresource status) shortly after a spec change;
  with `kubelet=False` pods never become ready, as in the recording (no kubelet there);
- a Job controller stand-in: a new Job is marked Complete (status startTime, completionTime,
  succeeded 1, condition Complete, the documented batch/v1 JobStatus) without running its pod; with
  `kubelet=False` it stays active. What the pods of our Jobs run is tested for real in tests/runtime;
- GET, LIST with labelSelector and limit, DELETE (Namespace: Terminating, then gone with its
  objects; PVC keeps its finalizer while a namespace-less controller would be needed);
- the error Status bodies: 400, 401, 403, 404 (JSON and text/plain), 409, 422, 500.
"""
from __future__ import annotations

import base64
import copy
import datetime
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

# The quantity canonicalisation and the FieldsV1 field sets below are written independently of
# plugins/module_utils/k8s/ on purpose: the stand-in plays the server, and sharing the
# engine's code would make the engine's tests agree with themselves. Both are checked against the
# real server's recordings instead (test_standin_conformance.py, tests/unit/test_k8s_apply_engine.py).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s-api-transcript"
ADMIN_TOKEN = "standin-admin-token"

# Lists that server-side apply merges by key (x-kubernetes-list-type: map) in the kinds we use;
# every other list is atomic (owned and replaced as a whole).
ASSOCIATIVE_LISTS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
}
PORT_KEYS = {"containers": ("containerPort", "protocol"), "service": ("port", "protocol")}
# maps marked x-kubernetes-map-type: atomic (a single leaf in FieldsV1, as recorded)
ATOMIC_MAPS = {"selector", "podSelector", "namespaceSelector", "secretKeyRef", "configMapKeyRef", "fieldRef",
               "resourceFieldRef", "roleRef"}
GENERATION_KINDS = {"Deployment", "StatefulSet", "Ingress", "NetworkPolicy", "CronJob", "Job",
                    "CustomResourceDefinition", "ReplicaSet"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
# Top-level spec fields of a Deployment (for "field not declared in schema", recorded as 500).
DEPLOYMENT_SPEC_FIELDS = {"replicas", "selector", "template", "strategy", "minReadySeconds",
                          "revisionHistoryLimit", "paused", "progressDeadlineSeconds"}
CONTAINER_FIELDS = {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
                    "resources", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe",
                    "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
                    "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty"}


def now_rfc3339(epoch=None):
    when = datetime.datetime.fromtimestamp(time.time() if epoch is None else epoch, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# quantities: the API server stores the canonical form ("1024Mi" -> "1Gi", "0.5" -> "500m")
_BIN = [("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]
_DEC = {"E": 10**18, "P": 10**15, "T": 10**12, "G": 10**9, "M": 10**6, "k": 10**3, "": 1, "m": None}


def canonical_quantity(q):
    if not isinstance(q, str):
        q = str(q)
    m = re.fullmatch(r"([0-9.]+)(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|k|m)?", q)
    if not m:
        return q
    num, suffix = m.group(1), m.group(2) or ""
    from decimal import Decimal
    value = Decimal(num)
    if suffix.endswith("i"):
        total = value * dict(_BIN)[suffix]
        if total == int(total):
            total = int(total)
            for name, size in _BIN:
                if total % size == 0 and total >= size:
                    return "%d%s" % (total // size, name)
            return str(total)
        return q
    milli = value if suffix == "m" else value * _DEC[suffix] * 1000
    if milli != int(milli):
        return q
    milli = int(milli)
    if milli % 1000:
        return "%dm" % milli
    total = milli // 1000
    for name in ("E", "P", "T", "G", "M", "k"):
        if total % _DEC[name] == 0 and total >= _DEC[name]:
            return "%d%s" % (total // _DEC[name], name)
    return str(total)


def canonicalize(kind, obj):
    """What the server stores for what was sent."""
    obj = copy.deepcopy(obj)
    if kind == "Secret" and "stringData" in obj:
        data = obj.setdefault("data", {})
        for k, v in obj.pop("stringData").items():
            data[k] = base64.b64encode(str(v).encode()).decode()

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in list(node.items()):
                if k in ("requests", "limits") and isinstance(v, dict) and key == "resources":
                    node[k] = {rk: canonical_quantity(rv) for rk, rv in v.items()}
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
    walk(obj)
    return obj


# ---------------------------------------------------------------------------------------------
# field sets (managedFields FieldsV1) and merging

def _list_keys(name, parent_kind):
    if name == "ports":
        return PORT_KEYS["service" if parent_kind == "Service" else "containers"]
    return ASSOCIATIVE_LISTS.get(name)


def _item_key(item, keys):
    k = {}
    for name in keys:
        if name in item:
            k[name] = item[name]
        elif name == "protocol":
            k[name] = "TCP"
    return json.dumps(k, separators=(",", ":"), sort_keys=True)


def field_paths(obj, kind, prefix=()):
    """Leaf paths of an applied object: ('f', key) / ('k', itemkey) tuples."""
    out = set()
    for k, v in obj.items():
        if prefix == () and k in ("apiVersion", "kind"):
            continue
        if prefix == (("f", "metadata"),) and k in ("name", "namespace", "resourceVersion",
                                                   "managedFields", "uid", "creationTimestamp"):
            continue
        p = prefix + (("f", k),)
        keys = _list_keys(k, kind) if isinstance(v, list) else None
        if isinstance(v, dict) and v and k not in ATOMIC_MAPS:
            out |= field_paths(v, kind, p)
        elif keys and all(isinstance(i, dict) for i in v):
            for item in v:
                ip = p + (("k", _item_key(item, keys)),)
                out.add(ip + ((".", ""),))
                out |= field_paths(item, kind, ip)
        else:
            out.add(p)
    return out


def to_fieldsv1(paths):
    tree = {}
    for p in sorted(paths):
        node = tree
        for typ, name in p:
            label = "." if typ == "." else "%s:%s" % (typ, name)
            node = node.setdefault(label, {})
    return tree


def from_fieldsv1(tree, prefix=()):
    out = set()
    for label, sub in tree.items():
        if label == ".":
            out.add(prefix + ((".", ""),))
            continue
        typ, name = label.split(":", 1)
        p = prefix + ((typ, name),)
        if sub:
            out |= from_fieldsv1(sub, p)
        else:
            out.add(p)
    return out


def path_text(path):
    s = ""
    for typ, name in path:
        if typ == "f":
            s += "." + name
        elif typ == "k":
            s += "[" + ",".join('%s=%s' % (k, json.dumps(v)) for k, v in json.loads(name).items()) + "]"
    return s


_MISSING = object()


def get_path(obj, path, kind):
    node = obj
    parent_name = None
    for typ, name in path:
        if typ == ".":
            return node
        if typ == "f":
            if not isinstance(node, dict) or name not in node:
                return _MISSING
            parent_name = name
            node = node[name]
        else:
            keys = _list_keys(parent_name, kind)
            if not isinstance(node, list) or not keys:
                return _MISSING
            for item in node:
                if isinstance(item, dict) and _item_key(item, keys) == name:
                    node = item
                    break
            else:
                return _MISSING
    return node


def remove_path(obj, path, kind):
    """Remove a leaf (or keyed list item) from obj; prune emptied parents."""
    if path[-1][0] == ".":
        path = path[:-1]
    parents = []
    node = obj
    parent_name = None
    for typ, name in path[:-1]:
        parents.append(node)
        if typ == "f":
            if not isinstance(node, dict) or name not in node:
                return
            parent_name = name
            node = node[name]
        else:
            keys = _list_keys(parent_name, kind)
            match = [i for i in node if isinstance(i, dict) and _item_key(i, keys) == name] if keys else []
            if not match:
                return
            node = match[0]
    typ, name = path[-1]
    if typ == "f" and isinstance(node, dict):
        node.pop(name, None)
    elif typ == "k" and isinstance(node, list):
        keys = _list_keys(parent_name, kind)
        node[:] = [i for i in node if not (isinstance(i, dict) and _item_key(i, keys) == name)]


def merge_applied(live, applied, kind, name=None):
    """Set every field of `applied` in `live` (associative lists merged by key)."""
    if isinstance(applied, dict) and isinstance(live, dict):
        out = dict(live)
        for k, v in applied.items():
            out[k] = merge_applied(live.get(k), v, kind, k) if k in live else copy.deepcopy(v)
        return out
    keys = _list_keys(name, kind) if isinstance(applied, list) else None
    if keys and isinstance(live, list) and all(isinstance(i, dict) for i in applied + live):
        out = [copy.deepcopy(i) for i in live]
        index = {_item_key(i, keys): n for n, i in enumerate(out)}
        for item in applied:
            key = _item_key(item, keys)
            if key in index:
                out[index[key]] = merge_applied(out[index[key]], item, kind)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(applied)


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def changed_paths(old, new, kind, prefix=()):
    """Leaf paths whose value differs between old and new (for Update-operation ownership)."""
    out = set()
    if isinstance(new, dict) and isinstance(old, dict):
        for k in set(new) | set(old):
            if prefix == () and k in ("metadata", "status", "apiVersion", "kind"):
                if k == "metadata":
                    for mk in ("labels", "annotations"):
                        out |= changed_paths(old.get("metadata", {}).get(mk, {}),
                                             new.get("metadata", {}).get(mk, {}), kind,
                                             (("f", "metadata"), ("f", mk)))
                continue
            if old.get(k, _MISSING) != new.get(k, _MISSING):
                if isinstance(new.get(k), dict) and isinstance(old.get(k), dict):
                    out |= changed_paths(old[k], new[k], kind, prefix + (("f", k),))
                else:
                    out.add(prefix + (("f", k),))
    return out


# ---------------------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, text=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.text = code, reason, message, details, text

    def body(self):
        if self.text is not None:
            return self.text
        b = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message}
        if self.reason:
            b["reason"] = self.reason
        if self.details is not None:
            b["details"] = self.details
        b["code"] = self.code
        return b


def page_not_found():
    return ApiError(404, None, "404 page not found", text="404 page not found\n")


class Resource:
    def __init__(self, group, version, plural, kind, namespaced, verbs=None, custom=False):
        self.group, self.version, self.plural, self.kind, self.namespaced = group, version, plural, kind, namespaced
        self.custom = custom
        self.verbs = verbs or ["create", "delete", "get", "list", "patch", "update"]

    @property
    def group_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def discovery(self):
        return {"name": self.plural, "singularName": "", "namespaced": self.namespaced,
                "kind": self.kind, "verbs": self.verbs}


class Store:
    """Objects, resourceVersions and field ownership of the stand-in."""

    def __init__(self, kubelet=True, controllers=True, controller_delay=0.05, crd_delay=0.02, namespace_delay=4.0,
                 status_delay=0.02, clock=time.time):
        self.lock = threading.RLock()
        self.clock = clock  # the conformance replay passes a clock it advances as the recording did
        # controllers=False: no kube-controller-manager (as in 09b): no status writes, a deleted PVC
        # keeps its finalizer, a deleted namespace stays Terminating.
        self.controllers = controllers
        self.namespace_deadlines = {}
        self.rv = 1000
        self.objects = {}  # (plural_key, namespace, name) -> object
        self.pvc_first_reapply = set()
        self.kubelet = kubelet
        self.controller_delay = controller_delay
        self.crd_delay = crd_delay
        self.namespace_delay = namespace_delay
        # The deployment controller writes status (and makes the ReplicaSet) a moment after a spec
        # change, on the store's clock: a request sent right after the change does not see it yet, one
        # a few requests later does (03-change, second-recording/03 and 09: ~10 ms per request there).
        self.status_delay = status_delay
        self.due = []  # [deadline on self.clock, function, args]: controller work not yet done
        self.requests = 0
        self.writes = 0
        self.discovery = {}
        self.resources = {}
        for step in json.loads((FIXTURES / "01-discovery.json").read_text()):
            path, body = step["request"]["path"], step["response"]["body"]
            self.discovery[path] = body
            if body.get("kind") == "APIResourceList":
                gv = body["groupVersion"]
                group, version = gv.split("/") if "/" in gv else ("", gv)
                for r in body["resources"]:
                    if "/" not in r["name"]:
                        self.add_resource(Resource(group, version, r["name"], r["kind"], r["namespaced"], r["verbs"]))
        # resources the engine may meet that the trimmed recording does not list
        for group, version, plural, kind, ns in [
            ("", "v1", "pods", "Pod", True), ("apps", "v1", "replicasets", "ReplicaSet", True),
            ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
            ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
            ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
            ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
            # stored and served only: this stand-in never evaluates an admission policy (the real API
            # server in molecule/site does)
            ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", False),
            ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
             "ValidatingAdmissionPolicyBinding", False),
        ]:
            if (group, version, plural) not in self.resources:
                self.add_resource(Resource(group, version, plural, kind, ns))
        self.served_crds = {}  # (group, version, plural) -> Resource, once "established"
        self.crd_schemas = {}

    def seed(self, path, obj):
        """Put an object in the store as a recording showed it (the conformance replay starts each
        recorded file from the state the real server had then). Placeholders get fresh values."""
        m = ROUTE.match(path)
        res = self.resource(m.group("g") or "", m.group("cv") or m.group("v"), m.group("plural"))
        obj = copy.deepcopy(obj)
        with self.lock:
            key = self.key(res, m.group("ns"), m.group("name"))
            if res.namespaced and ("/namespaces", None, m.group("ns")) not in self.objects:
                self.objects[("/namespaces", None, m.group("ns"))] = {
                    "kind": "Namespace", "apiVersion": "v1", "metadata": {
                        "name": m.group("ns"), "uid": str(uuid.uuid4()), "resourceVersion": self.next_rv(),
                        "labels": {"kubernetes.io/metadata.name": m.group("ns")}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = self.next_rv()
            meta["uid"] = str(uuid.uuid4())
            for mf in meta.get("managedFields", []):
                mf["time"] = now_rfc3339(self.clock())
            obj.setdefault("apiVersion", res.group_version)
            obj.setdefault("kind", res.kind)
            self.objects[key] = obj
            if res.kind == "Deployment" and self.controllers:
                self.replicaset_for(obj)

    def add_resource(self, res):
        self.resources[(res.group, res.version, res.plural)] = res

    def next_rv(self):
        self.rv += 1
        self.writes += 1
        return str(self.rv)

    # -- discovery ----------------------------------------------------------------------------
    def discovery_doc(self, path):
        if path == "/apis":
            doc = copy.deepcopy(self.discovery["/apis"])
            names = {g["name"] for g in doc["groups"]}
            for (group, version, _p) in list(self.served_crds):
                if group not in names:
                    gv = {"groupVersion": "%s/%s" % (group, version), "version": version}
                    doc["groups"].append({"name": group, "versions": [gv], "preferredVersion": gv})
                    names.add(group)
            return doc
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
        if m:
            group, version = m.groups()
            resources = [r for (g, v, _p), r in list(self.resources.items()) + list(self.served_crds.items())
                         if g == group and v == version]
            advertised = any(gv.get("groupVersion") == "%s/%s" % (group, version)
                             for g in self.discovery["/apis"]["groups"] for gv in g["versions"])
            if not resources and not advertised:
                raise page_not_found()
            # groups the server advertises but the trimmed recording did not list: served, empty
            doc = copy.deepcopy(self.discovery.get(path) or {
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (group, version),
                "resources": []})
            listed = {r["name"] for r in doc["resources"]}
            doc["resources"] += [r.discovery() for r in resources if r.plural not in listed]
            return doc
        if path in self.discovery:
            return self.discovery[path]
        raise page_not_found()

    def resource(self, group, version, plural):
        with self.lock:
            res = self.resources.get((group, version, plural)) or self.served_crds.get((group, version, plural))
        if res is None:
            known_group = any(g == group and v == version for (g, v, _p) in self.resources) or \
                any(g == group and v == version for (g, v, _p) in self.served_crds)
            if known_group:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            raise page_not_found()
        return res

    # -- reads --------------------------------------------------------------------------------
    def key(self, res, namespace, name):
        return ("%s/%s" % (res.group, res.plural), namespace if res.namespaced else None, name)

    def get(self, res, namespace, name):
        with self.lock:
            obj = self.objects.get(self.key(res, namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", '%s%s "%s" not found' % (
                    res.plural, "." + res.group if res.group else "", name),
                    {"name": name, "group": res.group, "kind": res.plural} if res.group else
                    {"name": name, "kind": res.plural})
            return copy.deepcopy(obj)

    def list(self, res, namespace, selector=None, limit=None):
        with self.lock:
            items = [copy.deepcopy(o) for (k, ns, _n), o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                     if k == "%s/%s" % (res.group, res.plural) and (namespace is None or ns == namespace)]
            rv = str(self.rv)
        if selector:
            items = [o for o in items if match_selector(o["metadata"].get("labels", {}), selector)]
        meta = {"resourceVersion": rv}
        if limit and len(items) > limit:
            items = items[:limit]
            meta["continue"] = "standin-continue"
            meta["remainingItemCount"] = 1
        for o in items:
            o.pop("apiVersion", None)
            o.pop("kind", None)
        return {"kind": res.kind + "List", "apiVersion": res.group_version, "metadata": meta, "items": items}

    # -- writes -------------------------------------------------------------------------------
    def check_namespace(self, res, namespace, name):
        if not res.namespaced:
            return
        ns = self.objects.get(("/namespaces", None, namespace))
        if ns is None:
            raise ApiError(404, "NotFound", 'namespaces "%s" not found' % namespace,
                           {"name": namespace, "kind": "namespaces"})
        if ns.get("status", {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden", '%s "%s" is forbidden: unable to create new content in namespace %s '
                           'because it is being terminated' % (res.plural, name, namespace),
                           {"name": name, "kind": res.plural, "causes": [{
                               "reason": "NamespaceTerminating",
                               "message": "namespace %s is being terminated" % namespace,
                               "field": "metadata.namespace"}]})

    def apply(self, res, namespace, name, body, manager, force=False, dry_run=False, update=False):
        """Server-side apply (update=False) or merge patch as an Update operation (update=True)."""
        with self.lock:
            key = self.key(res, namespace, name)
            live = self.objects.get(key)
            if update and live is None:
                self.get(res, namespace, name)  # raises the recorded 404
            if not update:
                validate(res, namespace, name, body, self.crd_schemas.get((res.group, res.plural)))
            if live is None:
                self.check_namespace(res, namespace, name)
            gv = res.group_version
            managers = [dict(m) for m in (live or {}).get("metadata", {}).get("managedFields", [])]
            owned = {(m["manager"], m["operation"], m.get("subresource", "")): from_fieldsv1(m.get("fieldsV1", {}))
                     for m in managers}
            base = strip_meta(live) if live else {}

            if update:
                merged = merge_patch(base, body)
                new_paths = changed_paths(base, merged, res.kind)
                me = (manager, "Update", "")
                for other in list(owned):
                    if other != me:
                        owned[other] -= new_paths
                owned[me] = owned.get(me, set()) | new_paths
            else:
                paths = field_paths(body, res.kind)
                me = (manager, "Apply", "")
                conflicts = []
                for other, opaths in owned.items():
                    if other[0] == manager or other[2] == "status":
                        continue
                    for p in sorted(paths & opaths):
                        if p[-1][0] == ".":
                            continue
                        if get_path(base, p, res.kind) != get_path(body, p, res.kind):
                            conflicts.append((other, p))
                if conflicts and not force:
                    raise conflict_error(conflicts, gv)
                for other, p in conflicts:
                    owned[other].discard(p)
                previous = owned.get(me, set())
                merged = copy.deepcopy(base)
                # fields we owned and no longer apply are removed, unless someone else owns them
                for p in sorted(previous - paths, key=len, reverse=True):
                    if not any(p in s for o, s in owned.items() if o != me):
                        remove_path(merged, p, res.kind)
                merged = merge_applied(merged, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")},
                                       res.kind)
                merged.setdefault("metadata", {})
                owned[me] = paths

            merged["metadata"]["name"] = name
            if res.namespaced:
                merged["metadata"]["namespace"] = namespace
            # As the real server does: the manager's time moves to "now" when the merged object
            # differs from the stored one (before canonicalisation); if the final object differs from
            # the stored one only in managedFields times, the old managedFields are kept and nothing
            # is written. So a Secret's stringData or a non-canonical quantity (applied form never
            # equal to the stored form) re-applied in a later second is a no-op (02-apply-create-reapply;
            # Kubernetes 1.24 rewrote the object in every later second).
            old_entries = {(m["manager"], m["operation"], m.get("subresource", "")): m for m in managers}
            pvc_bump = live is not None and key in self.pvc_first_reapply and not update
            touched = live is None or merged != base or pvc_bump or me not in old_entries
            stamp = now_rfc3339(self.clock())
            if touched:
                entry = {"manager": manager, "operation": me[1], "apiVersion": gv, "time": stamp,
                         "fieldsType": "FieldsV1", "fieldsV1": to_fieldsv1(owned[me])}
            else:
                entry = old_entries[me]
            new_managers = []
            for k, m in old_entries.items():
                if k == me:
                    new_managers.append(entry)
                elif owned.get(k):
                    if owned[k] != from_fieldsv1(m.get("fieldsV1", {})) and m.get("subresource") != "status":
                        m = dict(m, fieldsV1=to_fieldsv1(owned[k]))
                    new_managers.append(m)
            if me not in old_entries:
                new_managers.append(entry)
            # Apply entries first, then Update entries (as the server returns them)
            new_managers.sort(key=lambda m: m["operation"] != "Apply")
            stored = canonicalize(res.kind, merged)
            meta = stored["metadata"]
            meta["managedFields"] = new_managers
            if live is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = stamp
                if res.kind in GENERATION_KINDS or res.custom:
                    meta["generation"] = 1
                if res.kind == "PersistentVolumeClaim":
                    meta["finalizers"] = ["kubernetes.io/pvc-protection"]
                    stored["status"] = {"phase": "Pending"}
                if res.kind == "Namespace":
                    stored["spec"] = {"finalizers": ["kubernetes"]}
                    stored["status"] = {"phase": "Active"}
                    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            else:
                for k in ("uid", "creationTimestamp", "generation", "finalizers", "deletionTimestamp",
                          "resourceVersion"):
                    if k in live["metadata"]:
                        meta[k] = live["metadata"][k]
                if res.kind == "Namespace":
                    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                    stored["spec"] = live.get("spec")
                if "status" in live:
                    stored["status"] = live["status"]
                if (res.kind in GENERATION_KINDS or res.custom) and spec_of(stored) != spec_of(live):
                    meta["generation"] = live["metadata"].get("generation", 1) + 1
            stored["apiVersion"], stored["kind"] = gv, res.kind
            stored = order_object(stored)
            if live is not None and without_times(stored) == without_times(live):
                meta["managedFields"] = live["metadata"].get("managedFields", [])
            if live is not None and stored == live and not pvc_bump:
                return 200, copy.deepcopy(live)  # nothing to write: resourceVersion stays
            if dry_run:
                if live is None:
                    meta.pop("resourceVersion", None)
                else:
                    meta["resourceVersion"] = live["metadata"]["resourceVersion"]
                return (201 if live is None else 200), stored
            meta["resourceVersion"] = self.next_rv()
            self.objects[key] = stored
            if res.kind == "PersistentVolumeClaim":
                if live is None:
                    self.pvc_first_reapply.add(key)
                else:
                    self.pvc_first_reapply.discard(key)
            response = copy.deepcopy(stored)
            if res.kind == "CustomResourceDefinition":
                if live is None:
                    response["status"] = {"conditions": None, "acceptedNames": {"plural": "", "kind": ""},
                                          "storedVersions": [v["name"] for v in stored.get("spec", {}).get("versions", [])
                                                             if v.get("storage")]}
                    meta["resourceVersion"] = self.next_rv()  # the CRD controllers' status write
                self.crd_changed(stored)
            if self.controllers and res.kind in WORKLOAD_KINDS and \
                    (live is None or meta.get("generation") != live["metadata"].get("generation")):
                self.defer(self.status_delay, self.workload_status, key)
            if self.controllers and res.kind == "Job" and live is None:
                self.schedule(self.controller_delay, self.job_status, key)
            return (201 if live is None else 200), response

    def delete(self, res, namespace, name, propagation=None):
        with self.lock:
            key = self.key(res, namespace, name)
            obj = self.get(res, namespace, name)
            if res.kind == "Namespace":
                obj["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock())
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["resourceVersion"] = self.next_rv()
                self.objects[key] = obj
                if self.controllers:  # finished on the stand-in's clock (recorded: 3 s still there, gone by 5.3 s)
                    self.namespace_deadlines[name] = self.clock() + self.namespace_delay
                return copy.deepcopy(obj)
            if res.kind == "PersistentVolumeClaim":
                obj["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock())
                obj["metadata"]["resourceVersion"] = self.next_rv()
                self.objects[key] = obj
                self.defer(self.controller_delay, self.remove, key)
                return copy.deepcopy(obj)
            if propagation == "Foreground":
                obj["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock())
                obj["metadata"]["finalizers"] = ["foregroundDeletion"]
                obj["metadata"]["resourceVersion"] = self.next_rv()
                self.objects[key] = obj
                self.defer(self.controller_delay, self.remove, key)
                return copy.deepcopy(obj)
            self.remove(key)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": res.group, "kind": res.plural,
                                "uid": obj["metadata"]["uid"]}}

    def remove(self, key):
        """Drop an object; for a Deployment also its ReplicaSets and Pods (the garbage collector)."""
        with self.lock:
            self.objects.pop(key, None)
            self.rv += 1
            if key[0] == "apps/deployments" and self.controllers:
                pattern = re.escape(key[2]) + r"-[a-z0-9]+(-[a-z0-9]+)?"
                for k in [k for k in self.objects if k[1] == key[1] and k[0] in ("apps/replicasets", "/pods")
                          and re.fullmatch(pattern, k[2])]:
                    del self.objects[k]

    # -- controllers (stand-ins) --------------------------------------------------------------
    def schedule(self, delay, fn, *args, always=False):
        if not (self.controllers or always):
            return
        t = threading.Timer(delay, fn, args)
        t.daemon = True
        t.start()

    def replicaset_for(self, dep):
        """The ReplicaSet (and Pending/Running Pod) the deployment controller would create."""
        template = dep["spec"].get("template", {})
        digest = uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(template, sort_keys=True)).hex[:10]
        ns, name = dep["metadata"]["namespace"], "%s-%s" % (dep["metadata"]["name"], digest)
        labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": digest})
        key = ("apps/replicasets", ns, name)
        if key not in self.objects:
            for k in [k for k, o in self.objects.items() if k[0] == "/pods" and k[1] == ns and
                      o["metadata"].get("generateName", "").startswith(dep["metadata"]["name"] + "-")]:
                del self.objects[k]  # the old ReplicaSet's pod goes as the new one comes
            self.objects[key] = {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {
                "name": name, "namespace": ns, "labels": labels, "uid": str(uuid.uuid4()), "generation": 1,
                "resourceVersion": self.next_rv(), "ownerReferences": [{"kind": "Deployment", "name": dep["metadata"]["name"]}]},
                "spec": {"replicas": dep["spec"].get("replicas", 1), "template": template}}
            pod = "%s-%s" % (name, uuid.uuid4().hex[:5])
            self.objects[("/pods", ns, pod)] = {"kind": "Pod", "apiVersion": "v1", "metadata": {
                "name": pod, "generateName": name + "-", "namespace": ns, "labels": labels, "uid": str(uuid.uuid4()),
                "resourceVersion": self.next_rv()}, "spec": template.get("spec", {}),
                "status": {"phase": "Running" if self.kubelet else "Pending"}}

    def defer(self, delay, fn, *args, always=False):
        """Controller work done once the store's clock has passed `delay` (see tick): on the clock a
        replay advances, not in a thread, so "right after" and "a moment later" do not race."""
        if self.controllers or always:
            with self.lock:
                self.due.append((self.clock() + delay, fn, args))

    def tick(self):
        for name, deadline in list(self.namespace_deadlines.items()):
            if self.clock() >= deadline:
                del self.namespace_deadlines[name]
                self.finish_namespace(name)
        with self.lock:
            now = self.clock()
            ready = [d for d in self.due if d[0] <= now]
            self.due = [d for d in self.due if d[0] > now]
            for _deadline, fn, args in ready:
                fn(*args)

    def finish_namespace(self, name):
        with self.lock:
            for key in [k for k in self.objects if k[1] == name]:
                del self.objects[key]
            self.objects.pop(("/namespaces", None, name), None)
            self.rv += 1

    def crd_changed(self, crd):
        spec = crd.get("spec", {})
        group, plural, kind = spec.get("group"), spec.get("names", {}).get("plural"), spec.get("names", {}).get("kind")
        mf = [m for m in crd["metadata"].get("managedFields", []) if m["manager"] != "kube-apiserver"]
        mf.append({"manager": "kube-apiserver", "operation": "Update", "apiVersion": "apiextensions.k8s.io/v1",
                   "time": now_rfc3339(self.clock()), "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:status": {"f:acceptedNames": {}, "f:conditions": {}}}, "subresource": "status"})
        crd["metadata"]["managedFields"] = mf
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now_rfc3339(self.clock()),
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now_rfc3339(self.clock()),
                 "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "acceptedNames": {"plural": plural, "singular": spec.get("names", {}).get("singular", ""),
                              "kind": kind, "listKind": kind + "List"},
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")]}
        namespaced = spec.get("scope") == "Namespaced"
        for v in spec.get("versions", []):
            if v.get("served", True):
                res = Resource(group, v["name"], plural, kind, namespaced, custom=True)
                self.crd_schemas[(group, plural)] = v.get("schema", {}).get("openAPIV3Schema")
                # The real server serves the new group a little after the CRD is created (08-crd:
                # an immediate CR apply got "404 page not found", one ~30 ms later was served).
                self.defer(self.crd_delay, self.served_crds.__setitem__, (group, v["name"], plural), res,
                           always=True)

    def job_status(self, key):
        """What the Job controller writes: active while the pod runs, then Complete (batch/v1 JobStatus)."""
        with self.lock:
            obj = self.objects.get(key)
            if obj is None:
                return
            stamp = now_rfc3339(self.clock())
            status = {"startTime": stamp, "active": 1, "ready": 0, "uncountedTerminatedPods": {}}
            if self.kubelet:
                status = {"startTime": stamp, "completionTime": stamp, "succeeded": 1, "ready": 0,
                          "uncountedTerminatedPods": {}, "conditions": [
                              {"type": "Complete", "status": "True", "lastProbeTime": stamp,
                               "lastTransitionTime": stamp}]}
            self.controller_status_write(obj, status, "batch/v1", stamp)

    def workload_status(self, key):
        with self.lock:
            obj = self.objects.get(key)
            if obj is None:
                return
            replicas = obj.get("spec", {}).get("replicas", 1)
            gen = obj["metadata"].get("generation", 1)
            status = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas}
            stamp = now_rfc3339(self.clock())
            if self.kubelet and replicas:
                status.update(readyReplicas=replicas, availableReplicas=replicas)
                conditions = [
                    {"type": "Available", "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                     "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                    {"type": "Progressing", "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                     "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."}]
            else:
                if replicas:
                    status["unavailableReplicas"] = replicas
                conditions = [
                    {"type": "Available", "status": "False", "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                     "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                    {"type": "Progressing", "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                     "reason": "ReplicaSetUpdated", "message": 'ReplicaSet "%s" is progressing.' % key[2]}]
            if obj["kind"] == "Deployment":
                # Kubernetes 1.35's deployment controller also counts terminating pods (always written)
                status["terminatingReplicas"] = 0
                status["conditions"] = conditions
                self.replicaset_for(obj)
            self.controller_status_write(obj, status, "apps/v1", stamp)

    def controller_status_write(self, obj, status, api_version, stamp):
        """The controller manager's status update: its managedFields entry and a new resourceVersion."""
        obj["status"] = status
        mf = [m for m in obj["metadata"].get("managedFields", []) if m["manager"] != "kube-controller-manager"]
        mf.append({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": api_version,
                   "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}, "subresource": "status"})
        obj["metadata"]["managedFields"] = mf
        obj["metadata"]["resourceVersion"] = self.next_rv()


def without_times(obj):
    """The object without its managedFields times (what decides whether a write is only a new time)."""
    out = copy.deepcopy(obj)
    for m in out.get("metadata", {}).get("managedFields", []):
        m.pop("time", None)
    return out


def strip_meta(obj):
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    for k in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation", "finalizers",
              "deletionTimestamp"):
        meta.pop(k, None)
    if obj.get("kind") == "Namespace":
        meta.get("labels", {}).pop("kubernetes.io/metadata.name", None)
        if not meta.get("labels"):
            meta.pop("labels", None)
        out.pop("spec", None)
    out.pop("status", None)
    out.pop("apiVersion", None)
    out.pop("kind", None)
    return out


def spec_of(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def order_object(obj):
    order = ["kind", "apiVersion", "metadata"]
    return {k: obj[k] for k in order + [k for k in obj if k not in order] if k in obj}


def conflict_error(conflicts, gv):
    by_manager = {}
    for (mgr, op, _sub), p in conflicts:
        label = '"%s"' % mgr if op == "Apply" else '"%s" using %s' % (mgr, gv)
        by_manager.setdefault(label, []).append(path_text(p))
    n = len(conflicts)
    if n == 1:
        (label, paths), = by_manager.items()
        message = "Apply failed with 1 conflict: conflict with %s: %s" % (label, paths[0])
    else:
        parts = ["conflicts with %s:\n%s" % (label, "\n".join("- " + p for p in paths))
                 for label, paths in by_manager.items()]
        message = "Apply failed with %d conflicts: %s" % (n, "\n".join(parts))
    causes = [{"reason": "FieldManagerConflict", "message": "conflict with %s" % label, "field": p}
              for label, paths in by_manager.items() for p in paths]
    return ApiError(409, "Conflict", message, {"causes": causes})


def match_selector(labels, selector):
    for term in [t.strip() for t in re.split(r",(?![^()]*\))", selector) if t.strip()]:
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            present = labels.get(m.group(1)) in values
            if (m.group(2) == "in") != present:
                return False
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term)
        if m:
            k, op, v = m.groups()
            if (labels.get(k) == v) != (op != "!="):
                return False
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def invalid(res, name, causes):
    # the resource's own group (Kubernetes 1.24 said Ingress.extensions for networking.k8s.io/v1)
    kind_label = "%s.%s" % (res.kind, res.group) if res.group else res.kind
    message = '%s "%s" is invalid: %s' % (kind_label, name, ", ".join(
        "%s: %s" % (c["field"], c["message"]) for c in causes))
    return ApiError(422, "Invalid", message, {"name": name, "group": res.group, "kind": res.kind,
                                               "causes": causes})


def typed_patch_error(res, namespace, name, errors):
    where = "%s/%s" % (namespace or "", name)
    head = "failed to create typed patch object (%s; %s, Kind=%s): " % (where, res.group_version, res.kind)
    if len(errors) == 1:
        return ApiError(500, None, head + errors[0])
    return ApiError(500, None, head + "errors:\n" + "\n".join("  " + e for e in errors))


def validate(res, namespace, name, body, crd_schema):
    meta = body.get("metadata") or {}
    if body.get("apiVersion") not in (None, res.group_version):
        group, _, version = str(body["apiVersion"]).rpartition("/")
        raise ApiError(400, "BadRequest", "invalid object type: %s/%s, Kind=%s" % (group, version, body.get("kind")))
    if res.namespaced and meta.get("namespace") not in (None, namespace):
        raise ApiError(400, "BadRequest",
                       "the namespace of the provided object does not match the namespace sent on the request")
    if meta.get("name") not in (None, name):
        raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (meta.get("name"), name))
    if res.kind == "Deployment":
        spec = body.get("spec") or {}
        errors = [".spec.%s: field not declared in schema" % k for k in spec if k not in DEPLOYMENT_SPEC_FIELDS]
        for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
            errors += ['.spec.template.spec.containers[name="%s"].%s: field not declared in schema'
                       % (c.get("name"), k) for k in c if k not in CONTAINER_FIELDS]
        if "replicas" in spec and not isinstance(spec["replicas"], int):
            errors.append(".spec.replicas: expected numeric (int or float), got %s"
                          % ("string" if isinstance(spec["replicas"], str) else type(spec["replicas"]).__name__))
        if errors:
            # Only the first is named, the outermost one, whatever fieldValidation says (06-invalid;
            # Kubernetes 1.24 listed every unknown field with fieldValidation=Strict).
            raise typed_patch_error(res, namespace, name, [min(errors, key=lambda e: e.count("."))])
        causes = []
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            causes.append({"reason": "FieldValueInvalid",
                           "message": "Invalid value: %d: must be greater than or equal to 0" % spec["replicas"],
                           "field": "spec.replicas"})
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in sel.items()):
            causes.append({"reason": "FieldValueInvalid",
                           "message": "Invalid value: %s: `selector` does not match template `labels`"
                           % json.dumps(labels, sort_keys=True, separators=(",", ":")),
                           "field": "spec.template.metadata.labels"})
        if causes:
            raise invalid(res, name, causes)
    if res.kind == "Ingress":
        causes = []
        for i, rule in enumerate((body.get("spec") or {}).get("rules") or []):
            for j, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
                if "pathType" not in path:
                    causes.append({"reason": "FieldValueRequired", "message": "Required value: pathType must be specified",
                                   "field": "spec.rules[%d].http.paths[%d].pathType" % (i, j)})
        if causes:
            raise invalid(res, name, causes)
    if crd_schema:
        errors, missing = [], []
        check_schema(body, crd_schema, "", errors, missing)
        if errors:
            raise typed_patch_error(res, namespace, name, errors)
        if missing:
            raise invalid(res, name, [{"reason": "FieldValueRequired", "message": "Required value", "field": f}
                                      for f in missing])


_TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}


def check_schema(value, schema, path, errors, missing):
    typ = schema.get("type")
    if typ in _TYPES and not isinstance(value, _TYPES[typ]) or (typ == "string" and isinstance(value, bool)):
        errors.append("%s: expected %s, got &value.valueUnstructured{Value:%s}" % (path or ".", typ, json.dumps(value)))
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                missing.append((path + "." + req).lstrip("."))
        for k, v in value.items():
            if k in props:
                check_schema(v, props[k], path + "." + k, errors, missing)
            elif props and path and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append("%s.%s: field not declared in schema" % (path, k))


# ---------------------------------------------------------------------------------------------
# HTTP

ROUTE = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oforest-k8s-standin/1"
    store: Store = None  # set by make_server

    def log_message(self, *args):
        pass

    def send_body(self, status, body):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def user(self):
        auth = self.headers.get("Authorization", "")
        if not auth:
            return "system:anonymous"
        if auth != "Bearer " + ADMIN_TOKEN:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return self.headers.get("Impersonate-User") or "standin-admin"

    def handle_any(self, method):
        store = self.store
        store.requests += 1
        store.tick()
        try:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = url.path.rstrip("/") or "/"
            user = self.user()
            if path in ("/version", "/healthz", "/livez", "/readyz"):
                return self.send_body(200, store.discovery["/version"] if path == "/version" else "ok")
            m = ROUTE.match(path)
            if user not in ("standin-admin",):
                verb = {"GET": "get" if m and m.group("name") else "list", "PATCH": "patch",
                        "DELETE": "delete"}.get(method, method.lower())
                plural = m.group("plural") if m else path
                group = (m.group("g") or "") if m else ""
                where = ('in the namespace "%s"' % m.group("ns")) if m and m.group("ns") else "at the cluster scope"
                target = '%s "%s"' % (plural, m.group("name")) if m and m.group("name") else plural
                raise ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group '
                               '"%s" %s' % (target, user, verb, plural, group, where),
                               dict({"kind": plural}, **({"name": m.group("name")} if m and m.group("name") else {})))
            if method == "GET" and (path in ("/api", "/apis", "/api/v1") or re.fullmatch(r"/apis/[^/]+/[^/]+", path)):
                doc = store.discovery_doc(path)
                if path == "/api":  # a server names its own address (recorded as a placeholder)
                    doc = dict(doc, serverAddressByClientCIDRs=[{
                        "clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % self.server.server_address[:2]}])
                return self.send_body(200, doc)
            if not m:
                raise page_not_found()
            group = m.group("g") or ""
            version = m.group("cv") or m.group("v")
            res = store.resource(group, version, m.group("plural"))
            ns, name = m.group("ns"), m.group("name")
            if res.namespaced and ns is None and name is not None:
                raise page_not_found()
            if method == "GET" and name:
                return self.send_body(200, store.get(res, ns, name))
            if method == "GET":
                limit = int(query["limit"]) if "limit" in query else None
                return self.send_body(200, store.list(res, ns, query.get("labelSelector"), limit))
            if method == "DELETE" and name:
                opts = json.loads(raw) if raw else {}
                return self.send_body(200, store.delete(res, ns, name,
                                                        query.get("propagationPolicy") or opts.get("propagationPolicy")))
            if method == "DELETE":  # deletecollection
                listed = store.list(res, ns, query.get("labelSelector"))
                for item in listed["items"]:
                    store.delete(res, ns, item["metadata"]["name"])
                return self.send_body(200, listed)
            if method == "PATCH" and name:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                dry = query.get("dryRun") == "All"
                if ctype == "application/apply-patch+yaml":
                    manager = query.get("fieldManager")
                    if not manager:
                        raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                       "Required value: is required for apply patch")
                    body = yaml.safe_load(raw.decode() or "{}")
                    if not isinstance(body, dict):
                        raise ApiError(400, "BadRequest", "error decoding YAML: the body is not an object")
                    status, obj = store.apply(res, ns, name, body, manager, query.get("force") == "true", dry)
                    return self.send_body(status, obj)
                if ctype == "application/merge-patch+json":
                    body = json.loads(raw or b"{}")
                    status, obj = store.apply(res, ns, name, body, query.get("fieldManager") or "unknown",
                                              dry_run=dry, update=True)
                    return self.send_body(status, obj)
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/apply-patch+yaml")
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        except ApiError as e:
            return self.send_body(e.code, e.body())

    def do_GET(self):
        self.handle_any("GET")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")


_TLS = {}


def tls_files():
    """A self-signed certificate for 127.0.0.1 (made once per process), like a cluster's serving cert."""
    if not _TLS:
        import tempfile
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import ipaddress
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oforest-k8s-standin")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                            x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        folder = Path(tempfile.mkdtemp(prefix="oforest-standin-tls-"))
        (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        _TLS.update(cert=str(folder / "tls.crt"), key=str(folder / "tls.key"))
    return _TLS["cert"], _TLS["key"]


def make_server(host="127.0.0.1", port=0, tls=True, **store_options):
    """A stand-in server; HTTPS by default (clients such as kubectl send tokens only over TLS)."""
    store = Store(**store_options)
    handler = type("BoundHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.store = store
    server.scheme = "http"
    if tls:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls_files())
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.scheme = "https"
        server.ca_file = tls_files()[0]
    return server


def start_background(**store_options):
    """Start a stand-in on a free loopback port; returns (server, base_url)."""
    server = make_server(**store_options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, "%s://127.0.0.1:%d" % (server.scheme, server.server_address[1])


def write_kubeconfig(path, base_url, token=ADMIN_TOKEN):
    path = Path(path)
    cluster = {"server": base_url}
    if base_url.startswith("https://"):
        cluster["certificate-authority-data"] = base64.b64encode(Path(tls_files()[0]).read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": cluster}],
        "users": [{"name": "standin-admin", "user": {"token": token}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin-admin"}}],
    }))
    return path


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="STAND-IN Kubernetes API server for oforest.otree tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--kubeconfig", help="write a kubeconfig for it here")
    ap.add_argument("--no-kubelet", action="store_true", help="pods never become ready (as recorded)")
    args = ap.parse_args()
    srv = make_server(port=args.port, kubelet=not args.no_kubelet)
    url = "%s://127.0.0.1:%d" % (srv.scheme, srv.server_address[1])
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, url)
    print("STAND-IN Kubernetes API server on %s" % url, flush=True)
    srv.serve_forever()
