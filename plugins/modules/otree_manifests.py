#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: otree_manifests
short_description: Render the Kubernetes manifests of oTree experiments (no cluster access)
version_added: 0.1.0
description:
  - A pure renderer that validates each experiment spec and returns the manifests that run it. It does
    not talk to a cluster; apply the result with M(oforest.otree.k8s_apply).
  - "Per experiment: a Namespace with Pod Security labels (restricted); a Secret with the database
    password, C(DATABASE_URL), the oTree admin password and REST key; an optional image pull Secret;
    Postgres (official image, pinned major, data path right for that major) as a Deployment with a
    PersistentVolumeClaim, a ClusterIP Service and a NetworkPolicy that admits only the experiment's
    oTree pod; oTree as a Deployment (replicas 1, strategy Recreate, C(otree prodserver 8000)) and a
    Service; an Ingress with TLS from a cert-manager ClusterIssuer and websocket timeouts."
  - Secrets not given are generated once; pass what the cluster already holds in O(existing_secrets)
    and they are kept on every later run (a changed admin password breaks an oTree database).
  - The result holds the Secret manifests. Run this module with C(no_log) (the role does).
author:
  - oforest.otree developers (@oforest)
options:
  experiments:
    description:
      - The experiments. Each is a mapping; see the role C(oforest.otree.otree_experiment)'s argument
        specification for every field (name, host, image, image_pull_secret, auth_level, admin_password,
        rest_key, production, extra_env, resources, run_as_user, postgres, ingress_class, cluster_issuer,
        websocket_timeout, namespace, state, purge).
    type: list
    elements: dict
    required: true
  defaults:
    description: Fields applied to every experiment that does not set them (e.g. ingress_class).
    type: dict
    default: {}
  existing_secrets:
    description:
      - The experiments' Secrets as they are in the cluster (e.g. from kubernetes.core.k8s_info), matched
        by namespace; their values are kept.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Never reports changed; it only renders.
"""

EXAMPLES = r"""
- name: Render two experiments
  oforest.otree.otree_manifests:
    experiments:
      - name: public-goods
        host: pgg.experiments.example.org
        image: registry.gitlab.example.org/lab/pgg:3f2a9c1
      - name: trust
        host: trust.experiments.example.org
        image: registry.gitlab.example.org/lab/trust:1.4.0
        auth_level: DEMO
    defaults:
      ingress_class: public
      cluster_issuer: letsencrypt-prod
  register: rendered
  no_log: true
"""

RETURN = r"""
experiments:
  description: One entry per experiment.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The experiment's name.
      type: str
    namespace:
      description: Its namespace.
      type: str
    state:
      description: present or absent.
      type: str
    purge:
      description: Whether removal also deletes its data (namespace, volume, secrets).
      type: bool
    url:
      description: Where participants and the admin reach it.
      type: str
      sample: https://pgg.experiments.example.org/
    owner:
      description: The owner label value to apply and prune with.
      type: str
    secret:
      description: Namespace/name of the Secret holding the admin password and REST key.
      type: str
      sample: otree-public-goods/otree-secrets
    generated:
      description: Secret keys generated in this run (empty once they exist in the cluster).
      type: list
      elements: str
    manifests:
      description: The manifests (contain the Secret).
      type: list
      elements: dict
"""

import base64

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.oforest.otree.plugins.module_utils.otree_render import (
    SECRET_KEYS, SECRET_NAME, SpecError, render_all)


def existing_by_namespace(module, secrets):
    out = {}
    for obj in secrets or []:
        if not isinstance(obj, dict):
            module.fail_json(msg="existing_secrets: each item must be a Secret object (as k8s_info returns it)")
        meta = obj.get("metadata") or {}
        if meta.get("name") != SECRET_NAME:
            continue
        values = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                values[key] = to_native(base64.b64decode(value))
            except (TypeError, ValueError):
                module.fail_json(msg="existing_secrets: %s/%s key %s is not base64" % (
                    meta.get("namespace"), meta.get("name"), key))
        out[meta.get("namespace")] = values
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            experiments=dict(type="list", elements="dict", required=True),
            defaults=dict(type="dict", default={}),
            # not no_log: that would mask every string in it (apiVersion, names) throughout the result;
            # the secret values are registered below and the parameter is not logged (see main)
            existing_secrets=dict(type="list", elements="dict", default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    by_namespace = existing_by_namespace(module, module.params["existing_secrets"])
    # the logged invocation shows a summary, never the stored (base64) values
    module.params["existing_secrets"] = ["%d stored secret(s) read, values not shown" % len(by_namespace)]
    # secret values (given or stored) never reach the output, the logged arguments included
    for values in by_namespace.values():
        module.no_log_values.update(v for v in values.values() if len(v) >= 3)
    for exp in module.params["experiments"]:
        for key in ("admin_password", "rest_key"):
            if isinstance(exp.get(key), str) and exp[key]:
                module.no_log_values.add(exp[key])
        if isinstance(exp.get("image_pull_secret"), dict) and exp["image_pull_secret"].get("password"):
            module.no_log_values.add(exp["image_pull_secret"]["password"])
    try:
        # match stored secrets to experiments by their namespace (default otree-<name>)
        existing = {}
        for exp in module.params["experiments"]:
            if isinstance(exp, dict) and exp.get("name"):
                ns = exp.get("namespace") or module.params["defaults"].get("namespace") or "otree-%s" % exp["name"]
                if ns in by_namespace:
                    existing[exp["name"]] = by_namespace[ns]
        rendered = render_all(module.params["experiments"], existing, module.params["defaults"])
    except SpecError as e:
        module.fail_json(msg=to_native(e), field=e.field)

    out = []
    for item in rendered:
        spec = item["spec"]
        out.append({
            "name": spec["name"], "namespace": spec["namespace"], "state": spec["state"], "purge": spec["purge"],
            "url": "https://%s/" % spec["host"] if spec["state"] == "present" else None,
            "owner": item["owner"], "secret": "%s/%s" % (spec["namespace"], SECRET_NAME),
            "generated": item["generated"] if spec["state"] == "present" else [],
            "manifests": item["manifests"],
        })
    module.exit_json(changed=False, experiments=out, secret_keys=list(SECRET_KEYS))


if __name__ == "__main__":
    main()
