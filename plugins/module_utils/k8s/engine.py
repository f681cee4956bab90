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

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import (
    FIRST_KINDS, GENERATED_ANNOTATION, KINDS, OWNER_LABEL, PROTECTED_KINDS, K8sError, describe)
from ansible_collections.oforest.otree.plugins.module_utils.k8s.fields import (
    comparable, contained, field_set, fieldsv1_set, normalize, redact)
from ansible_collections.oforest.otree.plugins.module_utils.k8s.waits import wait_established, wait_rolled_out


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
        if not self.check_mode:
            wait_established(self, obj, timeout)

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
        wait_rolled_out(self, items, timeout)


def object_diff(obj):
    """A result's before/after as ansible's diff callback renders it, headed by what it is (nothing
    before a creation; Secret values already redacted)."""
    label = "%s %s" % (obj["kind"], "%s/%s" % (obj["namespace"], obj["name"]) if obj["namespace"] else obj["name"])
    return {"before_header": label, "after_header": label,
            "before": obj["diff"]["before"] or "", "after": obj["diff"]["after"] or ""}
