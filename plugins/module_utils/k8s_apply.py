# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply engine for oforest.otree (client -> planner -> runner).

One API client per invocation; no API discovery for the kinds in KINDS (lazy, cached discovery for
the rest). The live objects are read with one LIST per resource (cluster-wide when allowed, else
per namespace), filtered by the ownership label the engine puts on everything it applies. An
object whose live state already holds exactly what we apply is not sent at all, so a no-op run
writes nothing; an object that differs is sent as a server-side apply PATCH under one field
manager, and reported changed only if its content really changed (resourceVersion alone is not
trusted: controllers write status, and the server rewrites some objects without a change).
Must run on Python 3.8 (Ubuntu 20.04 targets).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation

try:
    from kubernetes import client as k8s_client, config as k8s_config
    from kubernetes.client.rest import ApiException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = e

OWNER_LABEL = "oforest.otree/owner"
GENERATED_ANNOTATION = "oforest.otree/generated"

# apiVersion, kind -> (plural, namespaced): the kinds the collection applies, without discovery.
KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
}
FIRST_KINDS = ("CustomResourceDefinition", "Namespace")
PROTECTED_KINDS = ("PersistentVolumeClaim", "Namespace")
ASSOCIATIVE = {"containers": ("name",), "initContainers": ("name",), "env": ("name",), "volumes": ("name",),
               "volumeMounts": ("mountPath",), "imagePullSecrets": ("name",)}
# Maps the API marks x-kubernetes-map-type: atomic (owned as a whole; seen in the recorded FieldsV1).
ATOMIC_MAPS = ("selector", "podSelector", "namespaceSelector", "secretKeyRef", "configMapKeyRef", "fieldRef",
               "resourceFieldRef", "roleRef")
IGNORED_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink")


class K8sError(Exception):
    """An error with a message that says what to fix."""

    def __init__(self, message, status=None, obj=None):
        super(K8sError, self).__init__(message)
        self.status = status
        self.obj = obj


def describe(obj):
    meta = obj.get("metadata") or {}
    where = "%s/" % meta["namespace"] if meta.get("namespace") else ""
    return "%s %s%s" % (obj.get("kind"), where, meta.get("name"))


# ---------------------------------------------------------------------------------------------
# normalisation: send what the server stores, so that an identical re-apply is a no-op

_BIN = (("Ei", 2 ** 60), ("Pi", 2 ** 50), ("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10))
_DEC = (("E", 10 ** 18), ("P", 10 ** 15), ("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3))


def canonical_quantity(value):
    """Kubernetes' canonical form of a quantity: "1024Mi" -> "1Gi", "0.5" -> "500m", 2 -> "2"."""
    text = str(value)
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|k|m)?$", text)
    if not m:
        return text
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return text
    suffix = m.group(2) or ""
    if suffix.endswith("i"):
        total = number * dict(_BIN)[suffix]
        if total != total.to_integral_value():
            return text
        total = int(total)
        for name, size in _BIN:
            if total >= size and total % size == 0:
                return "%d%s" % (total // size, name)
        return str(total)
    milli = number if suffix == "m" else number * dict(_DEC + (("", 1),))[suffix] * 1000
    if milli != milli.to_integral_value():
        return text
    milli = int(milli)
    if milli % 1000:
        return "%dm" % milli
    total = milli // 1000
    for name, size in _DEC:
        if total >= size and total % size == 0:
            return "%d%s" % (total // size, name)
    return str(total)


def normalize(obj):
    """A copy of a manifest in the form the API server stores it."""
    obj = copy.deepcopy(obj)
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        data = obj.setdefault("data", {}) or {}
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        obj["data"] = data
    obj.pop("stringData", None)
    obj.pop("status", None)

    def walk(node, parent=None):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if parent == "resources" and key in ("requests", "limits") and isinstance(value, dict):
                    node[key] = dict((k, canonical_quantity(v)) for k, v in value.items())
                elif key == "storage" and parent in ("requests", "limits"):
                    node[key] = canonical_quantity(value)
                else:
                    walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)
    walk(obj)
    return obj


def contained(want, have):
    """True if every field of `want` has the same value in `have` (the server may add defaults)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(k in have and contained(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(
            contained(w, h) for w, h in zip(want, have))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return want == have
    return want == have


def field_set(obj, prefix=""):
    """The FieldsV1 leaf paths of an applied object (associative lists by their keys)."""
    out = set()
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind"):
            continue
        if prefix == "f:metadata" and key in ("name", "namespace"):
            continue
        path = "%s/f:%s" % (prefix, key) if prefix else "f:%s" % key
        keys = ASSOCIATIVE.get(key) if isinstance(value, list) else None
        if key == "ports" and isinstance(value, list):
            keys = ("containerPort", "protocol") if any("containerPort" in p for p in value if isinstance(p, dict)) \
                else ("port", "protocol")
        if isinstance(value, dict) and value and key not in ATOMIC_MAPS:
            out |= field_set(value, path)
        elif keys and value and all(isinstance(i, dict) for i in value):
            for item in value:
                ident = {}
                for k in keys:
                    if k in item:
                        ident[k] = item[k]
                    elif k == "protocol":
                        ident[k] = "TCP"
                item_path = "%s/k:%s" % (path, json.dumps(ident, sort_keys=True, separators=(",", ":")))
                out.add(item_path + "/.")
                out |= field_set(item, item_path)
        else:
            out.add(path)
    return out


def fieldsv1_set(tree, prefix=""):
    out = set()
    for label, sub in (tree or {}).items():
        if label == ".":
            out.add(prefix + "/.")
            continue
        path = "%s/%s" % (prefix, label) if prefix else label
        if label.startswith("k:"):
            ident = json.loads(label[2:])
            path = "%s/k:%s" % (prefix, json.dumps(ident, sort_keys=True, separators=(",", ":")))
        if sub:
            out |= fieldsv1_set(sub, path)
        else:
            out.add(path)
    return out


def comparable(obj):
    """An object without what the server manages itself (for change detection and diffs)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in IGNORED_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    if not annotations:
        meta.pop("annotations", None)
    out.pop("status", None)
    return out


# ---------------------------------------------------------------------------------------------
# client

class Client:
    """One kubernetes ApiClient per invocation, with the requests counted."""

    def __init__(self, kubeconfig=None, kubeconfig_content=None, context=None, in_cluster=False,
                 host=None, api_key=None, validate_certs=True, ca_cert=None, pool_size=16):
        if not HAS_KUBERNETES:
            raise K8sError("the Python library 'kubernetes' is required on the host that runs this module "
                           "(pip install kubernetes): %s" % KUBERNETES_IMPORT_ERROR)
        configuration = k8s_client.Configuration()
        try:
            if in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
            elif kubeconfig_content:
                k8s_config.load_kube_config_from_dict(kubeconfig_content, context=context,
                                                      client_configuration=configuration)
            elif host:
                configuration.host = host
            else:
                k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                            client_configuration=configuration)
        except Exception as e:  # the library raises several types for an unusable kubeconfig
            raise K8sError("cannot load the Kubernetes credentials (%s): %s" % (
                "in-cluster service account" if in_cluster else "kubeconfig %s" % (kubeconfig or "default"), e))
        if host:
            configuration.host = host
        if api_key:
            configuration.api_key = {"authorization": "Bearer " + api_key}
        if ca_cert:
            configuration.ssl_ca_cert = ca_cert
        if not validate_certs:
            configuration.verify_ssl = False
        configuration.connection_pool_maxsize = pool_size
        self.host = configuration.host
        self.api = k8s_client.ApiClient(configuration)
        self.requests = 0

    def request(self, method, path, query=None, body=None, content_type=None):
        self.requests += 1
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            if hasattr(self.api, "param_serialize"):  # kubernetes >= 35 (openapi-generator 7)
                serialized = self.api.param_serialize(
                    method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
                    auth_settings=["BearerToken"])
                response = self.api.call_api(*serialized)
                status, raw = response.status, response.read()
            else:  # older clients (e.g. on a managed host)
                response = self.api.call_api(
                    path, method, query_params=list((query or {}).items()), header_params=headers, body=body,
                    auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=False)
                status, raw = response[1], response[0].data
        except ApiException as e:
            raise api_error(e.status, e.body, method, path)
        except Exception as e:  # urllib3 connection errors
            raise K8sError("cannot reach the Kubernetes API server at %s: %s. Check the kubeconfig's server "
                           "address and that the cluster is running." % (self.host, e))
        if status >= 400:
            raise api_error(status, raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw, method, path)
        return status, json.loads(raw) if raw else {}


def api_error(status, body, method, path):
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"message": (body or "").strip()}
    if not isinstance(data, dict):
        data = {"message": str(data)}
    message = data.get("message") or "HTTP %s" % status
    return K8sError(message, status=status, obj=data)


# ---------------------------------------------------------------------------------------------
# engine

class Engine:
    def __init__(self, client, field_manager="oforest.otree", owner="oforest.otree", force_conflicts=False,
                 check_mode=False, workers=8, crd_timeout=60):
        self.client = client
        self.field_manager = field_manager
        self.owner = owner
        self.force = force_conflicts
        self.check_mode = check_mode
        self.workers = workers
        self.crd_timeout = crd_timeout
        self.discovered = {}
        self.dry_namespaces = set()

    # -- resources --------------------------------------------------------------------------
    def resource(self, api_version, kind):
        key = (api_version, kind)
        if key in KINDS:
            return KINDS[key]
        if key not in self.discovered:
            base = "/api/%s" % api_version if "/" not in api_version else "/apis/%s" % api_version
            deadline = time.time() + self.crd_timeout
            while True:
                try:
                    dummy_status, doc = self.client.request("GET", base)
                    found = [r for r in doc.get("resources", []) if r.get("kind") == kind and "/" not in r["name"]]
                    if found:
                        self.discovered[key] = (found[0]["name"], found[0]["namespaced"])
                        break
                except K8sError as e:
                    if e.status != 404:
                        raise
                if time.time() > deadline:
                    raise K8sError("the API server does not know kind %s in apiVersion %s: check apiVersion and "
                                   "kind, or install the CustomResourceDefinition that provides it" % (kind, api_version))
                time.sleep(0.2)
        return self.discovered[key]

    def path(self, api_version, plural, namespaced, namespace=None, name=None):
        base = "/api/%s" % api_version if "/" not in api_version else "/apis/%s" % api_version
        if namespaced and namespace:
            base += "/namespaces/%s" % namespace
        base += "/" + plural
        return base + ("/" + name if name else "")

    # -- planning ---------------------------------------------------------------------------
    def prepare(self, manifests, default_namespace=None):
        items = []
        seen = set()
        for index, raw in enumerate(manifests):
            if not isinstance(raw, dict):
                raise K8sError("manifest #%d is not a mapping (got %s)" % (index + 1, type(raw).__name__))
            for field in ("apiVersion", "kind"):
                if not raw.get(field):
                    raise K8sError("manifest #%d has no %s" % (index + 1, field))
            meta = raw.get("metadata") or {}
            if not meta.get("name"):
                raise K8sError("manifest #%d (%s) has no metadata.name" % (index + 1, raw["kind"]))
            obj = normalize(raw)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("labels", {})[OWNER_LABEL] = self.owner
            items.append(obj)
        for obj in items:
            known = KINDS.get((obj["apiVersion"], obj["kind"]))
            meta = obj["metadata"]
            if known is None:
                pass  # a custom kind: its scope is known once its CRD is served (see apply_one)
            elif known[1]:
                meta["namespace"] = meta.get("namespace") or default_namespace
                if not meta["namespace"]:
                    raise K8sError("%s needs metadata.namespace (or set the module's namespace option)" % describe(obj))
            else:
                meta.pop("namespace", None)
            key = (obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
            if key in seen:
                raise K8sError("%s appears twice in the manifest list" % describe(obj))
            seen.add(key)
        return items

    def phases(self, items):
        first = [o for o in items if o["kind"] in FIRST_KINDS]
        crds = [o for o in first if o["kind"] == "CustomResourceDefinition"]
        namespaces = [o for o in first if o["kind"] == "Namespace"]
        rest = [o for o in items if o["kind"] not in FIRST_KINDS]
        return [p for p in (crds, namespaces, rest) if p]

    # -- reading live state -----------------------------------------------------------------
    def prefetch(self, items):
        """Live objects by key, one LIST per resource (cluster-wide if allowed, else per namespace).
        Returns (live, unknown): `unknown` holds keys whose live state could not be listed."""
        live, unknown = {}, set()
        groups = {}
        for obj in items:
            if obj["kind"] == "CustomResourceDefinition" or (obj["apiVersion"], obj["kind"]) in KINDS or \
                    (obj["apiVersion"], obj["kind"]) in self.discovered:
                groups.setdefault((obj["apiVersion"], obj["kind"]), []).append(obj)
            else:
                unknown.add(self.key(obj))
        selector = "%s=%s" % (OWNER_LABEL, self.owner)

        def fetch(group):
            (api_version, kind), objs = group
            plural, namespaced = self.resource(api_version, kind)
            namespaces = sorted(set(o["metadata"].get("namespace") for o in objs))
            found, missed = {}, set()
            scopes = [None] if (not namespaced or len(namespaces) > 1) else namespaces
            for attempt in (scopes, namespaces if namespaced else None):
                if attempt is None:
                    break
                try:
                    for ns in attempt:
                        url = self.path(api_version, plural, namespaced, ns)
                        dummy_status, doc = self.client.request("GET", url, {"labelSelector": selector})
                        for item in doc.get("items", []):
                            m = item["metadata"]
                            item.setdefault("apiVersion", api_version)
                            item.setdefault("kind", kind)
                            found[(api_version, kind, m.get("namespace"), m["name"])] = item
                    return found, missed
                except K8sError as e:
                    if e.status == 403 and attempt is scopes and scopes == [None] and namespaced:
                        found = {}
                        continue  # not allowed cluster-wide: list per namespace
                    if e.status in (401, 403, 404):
                        return {}, set(self.key(o) for o in objs)
                    raise
            return found, missed

        groups_list = list(groups.items())
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for found, missed in pool.map(fetch, groups_list):
                live.update(found)
                unknown |= missed
        return live, unknown

    @staticmethod
    def key(obj):
        m = obj["metadata"]
        return (obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"])

    def up_to_date(self, obj, current):
        """Live object already holds exactly our fields, owned by us: nothing to send."""
        if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
            return False
        if not contained(obj, current):
            return False
        ours = [m for m in current["metadata"].get("managedFields") or []
                if m.get("manager") == self.field_manager and m.get("operation") == "Apply"]
        if len(ours) != 1:
            return False
        return fieldsv1_set(ours[0].get("fieldsV1")) == field_set(obj)

    # -- applying ---------------------------------------------------------------------------
    def apply_one(self, obj, current, unknown):
        plural, namespaced = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], plural, namespaced, meta.get("namespace"), meta["name"])
        if unknown:  # no LIST permission or unknown kind: read it (one extra request)
            try:
                dummy_status, current = self.client.request("GET", path)
            except K8sError as e:
                if e.status != 404:
                    raise self.explain(e, obj, "get")
                current = None
        if self.up_to_date(obj, current):
            return {"action": "unchanged", "before": current, "after": current}
        if self.check_mode and meta.get("namespace") in self.dry_namespaces:
            # its namespace is only dry-run-created: the server cannot dry-run objects inside it
            return {"action": "created", "before": None, "after": obj}
        query = {"fieldManager": self.field_manager}
        if self.force:
            query["force"] = "true"
        if self.check_mode:
            query["dryRun"] = "All"
        deadline = time.time() + self.crd_timeout
        while True:
            try:
                status, after = self.client.request("PATCH", path, query, obj, "application/apply-patch+yaml")
                break
            except K8sError as e:
                # A custom resource right after its CRD: the group is not served yet (text 404).
                if e.status == 404 and obj["apiVersion"] not in dict(KINDS) and "page not found" in str(e) \
                        and time.time() < deadline:
                    time.sleep(0.2)
                    continue
                raise self.explain(e, obj, "patch")
        if status == 201 or current is None:
            action = "created"
            if self.check_mode and obj["kind"] == "Namespace":
                self.dry_namespaces.add(meta["name"])
        elif comparable(after) != comparable(current):
            action = "configured"
        else:
            action = "unchanged"
        return {"action": action, "before": current, "after": after}

    def explain(self, error, obj, verb):
        """A K8sError that says what to fix."""
        data = error.obj or {}
        what = describe(obj)
        status = error.status
        causes = (data.get("details") or {}).get("causes") or []
        if status == 409:
            fields = ", ".join("%s (%s)" % (c.get("field"), c.get("message")) for c in causes) or str(error)
            return K8sError("%s: another field manager owns fields this apply sets: %s. Remove them from the "
                            "manifest, or take them over with force_conflicts=true." % (what, fields), status, obj)
        if status == 422:
            fields = "; ".join("%s: %s" % (c.get("field"), c.get("message")) for c in causes) or data.get("message")
            return K8sError("%s is invalid: %s" % (what, fields), status, obj)
        if status == 500 and "typed patch" in str(error):
            return K8sError("%s has fields the API does not know or values of the wrong type: %s"
                            % (what, str(error).split("): ", 1)[-1]), status, obj)
        if status == 401:
            return K8sError("the API server at %s rejected the credentials (401 Unauthorized): the token or "
                            "certificate in the kubeconfig is invalid or expired" % self.client.host, status, obj)
        if status == 403:
            return K8sError("%s: not allowed to %s it: %s. Grant this identity the permission (Role/RoleBinding) "
                            "or use another kubeconfig." % (what, verb, data.get("message")), status, obj)
        if status == 404:
            message = data.get("message") or str(error)
            if "namespaces" in message and "not found" in message:
                return K8sError("%s: namespace %s does not exist: add a Namespace manifest to the list or create "
                                "it first" % (what, obj["metadata"].get("namespace")), status, obj)
            return K8sError("%s: the API server has no %s in %s (%s): check apiVersion and kind, or install the "
                            "CustomResourceDefinition" % (what, obj["kind"], obj["apiVersion"], message.strip()),
                            status, obj)
        return K8sError("%s: %s failed (HTTP %s): %s" % (what, verb, status, data.get("message") or error),
                        status, obj)

    def wait_crd(self, obj, timeout):
        """Wait until a CRD we created is Established (in check mode nothing was created)."""
        if self.check_mode:
            return
        path = self.path(obj["apiVersion"], "customresourcedefinitions", False, None, obj["metadata"]["name"])
        deadline = time.time() + timeout
        while True:
            dummy_status, crd = self.client.request("GET", path)
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return
            if time.time() > deadline:
                raise K8sError("%s is not Established after %ss" % (describe(obj), timeout))
            time.sleep(0.2)

    def run(self, manifests, namespace=None, prune=False, prune_protected=False, wait=False, wait_timeout=300,
            diff=False, prune_namespaces=None):
        items = self.prepare(manifests, namespace)
        live, unknown = self.prefetch(items)
        results = []
        for phase in self.phases(items):
            def one(obj):
                k = self.key(obj)
                return obj, self.apply_one(obj, live.get(k), k in unknown)
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for obj, outcome in pool.map(one, phase):
                    results.append(self.result(obj, outcome, diff))
            for obj in phase:
                if obj["kind"] == "CustomResourceDefinition" and results and \
                        any(r["name"] == obj["metadata"]["name"] and r["action"] == "created" for r in results):
                    self.wait_crd(obj, self.crd_timeout)
        if prune:
            # Prune also looks at the kinds the list no longer has (every namespaced kind we know,
            # in the namespaces the list uses): dropping the last ConfigMap must prune it too.
            listed = set((o["apiVersion"], o["kind"]) for o in items)
            namespaces = sorted(set(o["metadata"].get("namespace") for o in items if o["metadata"].get("namespace")) |
                                set(o["metadata"]["name"] for o in items if o["kind"] == "Namespace") |
                                set(prune_namespaces or []))
            probes = [{"apiVersion": av, "kind": k, "metadata": {"name": "-", "namespace": ns}}
                      for (av, k), (_p, namespaced) in KINDS.items() if namespaced and (av, k) not in listed
                      for ns in namespaces]
            if ("v1", "Namespace") not in listed and namespaces:
                probes.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "-"}})
            scope = dict(live)
            if probes:
                found = self.prefetch(probes)[0]
                # only namespaces in scope, and only objects in them
                scope.update(dict((k, v) for k, v in found.items()
                                  if (k[1] == "Namespace" and k[3] in namespaces) or
                                  (k[1] != "Namespace" and k[2] in namespaces)))
            results += self.prune(items, scope, prune_protected, diff)
        if wait and not self.check_mode:
            self.wait_all(items, wait_timeout)
        return results

    @staticmethod
    def result(obj, outcome, diff):
        meta = obj["metadata"]
        out = {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "name": meta["name"],
               "namespace": meta.get("namespace"), "action": outcome["action"]}
        if diff and outcome["action"] != "unchanged":
            out["diff"] = {"before": redact(comparable(outcome["before"])) or {},
                           "after": redact(comparable(outcome["after"])) or {}}
        return out

    def prune(self, items, live, prune_protected, diff):
        """Delete objects with our owner label that the list no longer has, in the kinds and
        namespaces the list covers. PVCs, Namespaces and generated Secrets only if asked."""
        wanted = set(self.key(o) for o in items)
        results = []
        for key, current in sorted(live.items(), key=lambda kv: str(kv[0])):
            if key in wanted:
                continue
            api_version, kind, namespace, name = key
            annotations = current["metadata"].get("annotations") or {}
            protected = kind in PROTECTED_KINDS or (kind == "Secret" and annotations.get(GENERATED_ANNOTATION) == "true")
            if protected and not prune_protected:
                results.append({"kind": kind, "apiVersion": api_version, "name": name, "namespace": namespace,
                                "action": "kept", "reason": "protected kind: set prune_protected=true to delete"})
                continue
            plural, namespaced = self.resource(api_version, kind)
            query = {"propagationPolicy": "Background"}
            if self.check_mode:
                query["dryRun"] = "All"
            try:
                self.client.request("DELETE", self.path(api_version, plural, namespaced, namespace, name), query)
            except K8sError as e:
                if e.status != 404:
                    raise self.explain(e, current, "delete")
            out = {"kind": kind, "apiVersion": api_version, "name": name, "namespace": namespace, "action": "pruned"}
            if diff:
                out["diff"] = {"before": redact(comparable(current)), "after": {}}
            results.append(out)
        return results

    def wait_all(self, items, timeout):
        deadline = time.time() + timeout
        for obj in items:
            if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
                continue
            plural, namespaced = self.resource(obj["apiVersion"], obj["kind"])
            path = self.path(obj["apiVersion"], plural, namespaced, obj["metadata"].get("namespace"),
                             obj["metadata"]["name"])
            while True:
                dummy_status, current = self.client.request("GET", path)
                done, why = rollout_done(current)
                if done:
                    break
                if why.startswith("failed") or time.time() > deadline:
                    raise K8sError("%s did not become ready within %ss: %s" % (describe(obj), timeout, why))
                time.sleep(1)


def rollout_done(obj):
    """(done, reason) for a Deployment, StatefulSet or Job, read from its status."""
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    if kind == "Job":
        for c in status.get("conditions") or []:
            if c.get("type") == "Complete" and c.get("status") == "True":
                return True, "complete"
            if c.get("type") == "Failed" and c.get("status") == "True":
                return False, "failed: %s" % c.get("message")
        return False, "job still running"
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not seen the new spec yet"
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return False, "failed: %s" % c.get("message")
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return False, "failed: %s" % c.get("message")
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    # Counts the server omits are 0 (11-rollout-status: no readyReplicas field at all).
    if status.get("updatedReplicas", 0) < replicas:
        return False, "%d of %d replicas updated" % (status.get("updatedReplicas", 0), replicas)
    ready_field = "availableReplicas" if kind == "Deployment" else "readyReplicas"
    if status.get(ready_field, 0) < replicas:
        return False, "%d of %d replicas available (pods not ready: check the image, probes and `kubectl describe pod`)" \
            % (status.get(ready_field, 0), replicas)
    return True, "ready"


def redact(obj):
    """Secret values never reach output: data keys are kept, values replaced."""
    if not obj:
        return obj
    if obj.get("kind") == "Secret":
        obj = copy.deepcopy(obj)
        for field in ("data", "stringData"):
            if obj.get(field):
                obj[field] = dict((k, "<redacted sha256:%s>" % _short_hash(v)) for k, v in obj[field].items())
    return obj


def _short_hash(value):
    import hashlib
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:12]
