#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_apply
short_description: Idempotent server-side apply of a list of Kubernetes manifests
version_added: 0.1.0
description:
  - Applies a list of manifests with Kubernetes B(server-side apply) under one field manager.
  - CustomResourceDefinitions and Namespaces go first; a custom resource waits until its CRD is served.
  - Reads the live objects with one LIST per kind (filtered by the label C(oforest.otree/owner) the
    module puts on what it applies) and sends only the objects that differ, so a re-run of the same list
    writes nothing and reports C(changed=false). An object is reported changed only if its content
    changed, not because a controller wrote its status.
  - Secrets given with C(stringData) and non-canonical quantities (C(1024Mi)) are sent in the form the
    server stores (C(data), C(1Gi)), so they do not rewrite themselves on every run.
  - Check mode asks the server (C(dryRun=All)); C(--diff) shows a per-object diff without managedFields,
    resourceVersion, generation and status. Secret values are never shown.
author:
  - oforest.otree developers (@oforest)
extends_documentation_fragment:
  - oforest.otree.k8s_auth
options:
  manifests:
    description:
      - The objects to apply, as a list of mappings and/or a string of YAML documents.
    type: raw
    required: true
  namespace:
    description: Namespace for namespaced objects that do not name one.
    type: str
  field_manager:
    description: The server-side apply field manager.
    type: str
    default: oforest.otree
  owner:
    description:
      - Value of the label C(oforest.otree/owner) set on every applied object. Pruning removes only
        objects with this owner.
    type: str
    default: oforest.otree
  force_conflicts:
    description:
      - Take over fields another field manager owns. Off by default; a conflict fails with the
        manager and the fields named.
    type: bool
    default: false
  prune:
    description:
      - Delete objects with this owner that are no longer in the list (in the kinds and namespaces the list uses).
      - PersistentVolumeClaims, Namespaces and Secrets annotated C(oforest.otree/generated=true) are kept
        unless O(prune_protected=true).
    type: bool
    default: false
  prune_protected:
    description: Also prune PersistentVolumeClaims, Namespaces and generated Secrets (data loss!).
    type: bool
    default: false
  prune_namespaces:
    description:
      - Namespaces pruning looks in besides those the list uses. With an empty O(manifests) list this
        removes everything the owner has there (but the protected kinds, unless O(prune_protected)).
    type: list
    elements: str
    default: []
  wait:
    description: Wait for Deployments and StatefulSets to roll out and Jobs to complete.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait (rollouts, CRDs becoming Established).
    type: int
    default: 300
  workers:
    description: Requests sent at once (bounded concurrency).
    type: int
    default: 8
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Uses the API server's dry run (C(dryRun=All)); nothing is stored.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
notes:
  - "Usually run on the controller (C(delegate_to: localhost)) or wherever the kubeconfig is."
seealso:
  - name: Server-side apply
    description: Kubernetes documentation of server-side apply and field management.
    link: https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

EXAMPLES = r"""
- name: Apply an experiment's manifests
  oforest.otree.k8s_apply:
    kubeconfig: ~/.kube/microk8s.yaml
    manifests: "{{ lookup('ansible.builtin.template', 'experiment.yaml.j2') }}"
    wait: true
  delegate_to: localhost

- name: Apply a list, removing what was dropped from it (data volumes are kept)
  oforest.otree.k8s_apply:
    manifests:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: otree-demo
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: otree-demo
        data:
          OTREE_AUTH_LEVEL: STUDY
    prune: true
"""

RETURN = r"""
objects:
  description: One entry per object, in the order applied.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The object's kind.
      type: str
      sample: Deployment
    apiVersion:
      description: The object's apiVersion.
      type: str
      sample: apps/v1
    namespace:
      description: The object's namespace (null for cluster-scoped objects).
      type: str
      sample: otree-demo
    name:
      description: The object's name.
      type: str
      sample: otree
    action:
      description: created, configured, unchanged, pruned, or kept (a protected object pruning left alone).
      type: str
      sample: unchanged
    diff:
      description: Before and after (without server-managed fields; Secret values redacted), with --diff.
      type: dict
      returned: when diff mode is on and the object changed
requests:
  description: HTTP requests sent to the API server.
  returned: always
  type: int
  sample: 9
"""

import base64

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.oforest.otree.plugins.module_utils.errors import reported
from ansible_collections.oforest.otree.plugins.module_utils.k8s.client import (
    CONNECTION_ARGS, CONNECTION_EXCLUSIVE, HAS_KUBERNETES, KUBERNETES_IMPORT_ERROR, client_from_params)
from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine, object_diff

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False


def load_manifests(module, value):
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, str):
        if not HAS_YAML:
            module.fail_json(msg=missing_required_lib("PyYAML"))
        try:
            value = [d for d in yaml.safe_load_all(value) if d is not None]
        except yaml.YAMLError as e:
            module.fail_json(msg="manifests: not valid YAML: %s" % to_native(e))
    if not isinstance(value, list):
        module.fail_json(msg="manifests: expected a list of mappings or a YAML string, got %s" % type(value).__name__)
    flat = []
    for item in value:
        if isinstance(item, str):
            flat.extend(d for d in yaml.safe_load_all(item) if d is not None)
        elif isinstance(item, dict) and item.get("kind", "").endswith("List") and "items" in item:
            flat.extend(item["items"])
        else:
            flat.append(item)
    return flat


def hide_secret_values(module, manifests):
    """Secret values (as given and base64-encoded) never reach the output, not even the logged
    module arguments at -vvv."""
    for obj in manifests:
        if not isinstance(obj, dict) or obj.get("kind") != "Secret":
            continue
        for field, encoded in (("stringData", False), ("data", True)):
            for value in (obj.get(field) or {}).values():
                value = to_native(value)
                forms = [value]
                try:
                    forms.append(to_native(base64.b64decode(value)) if encoded else
                                 to_native(base64.b64encode(value.encode("utf-8"))))
                except (ValueError, TypeError):
                    pass
                module.no_log_values.update(f for f in forms if len(f) >= 3)


def main():
    argument_spec = dict(
        manifests=dict(type="raw", required=True),
        namespace=dict(type="str"),
        field_manager=dict(type="str", default="oforest.otree"),
        owner=dict(type="str", default="oforest.otree"),
        force_conflicts=dict(type="bool", default=False),
        prune=dict(type="bool", default=False),
        prune_protected=dict(type="bool", default=False),
        prune_namespaces=dict(type="list", elements="str", default=[]),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        workers=dict(type="int", default=8),
    )
    argument_spec.update(CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=CONNECTION_EXCLUSIVE,
                           supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=to_native(KUBERNETES_IMPORT_ERROR))
    params = module.params
    if params["workers"] < 1:
        module.fail_json(msg="workers: must be at least 1, got %d" % params["workers"], field="workers")
    if params["wait_timeout"] < 1:
        module.fail_json(msg="wait_timeout: must be at least 1 second, got %d" % params["wait_timeout"],
                         field="wait_timeout")
    manifests = load_manifests(module, params["manifests"])
    hide_secret_values(module, manifests)
    # the result's invocation names what was applied instead of echoing every manifest back (650
    # objects for 50 experiments: moving them out again cost more than the apply)
    params["manifests"] = "%d object(s)" % len(manifests)

    with reported(module, "k8s_apply"):
        client = client_from_params(params, pool_size=max(params["workers"], 1) * 2)
        engine = Engine(client, field_manager=params["field_manager"], owner=params["owner"],
                        force_conflicts=params["force_conflicts"], check_mode=module.check_mode,
                        workers=params["workers"], crd_timeout=params["wait_timeout"])
        objects = engine.run(manifests, namespace=params["namespace"], prune=params["prune"],
                             prune_protected=params["prune_protected"], wait=params["wait"],
                             wait_timeout=params["wait_timeout"], diff=module._diff,
                             prune_namespaces=params["prune_namespaces"])

    changed = any(o["action"] in ("created", "configured", "pruned") for o in objects)
    result = dict(changed=changed, objects=objects, requests=client.requests)
    if module._diff:  # one before/after pair per changed object, as ansible's diff callback renders them
        result["diff"] = [object_diff(o) for o in objects if "diff" in o]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
