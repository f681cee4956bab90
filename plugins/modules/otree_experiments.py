#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: otree_experiments
short_description: Deploy, update or remove oTree experiments in one call (render and server-side apply)
version_added: 0.2.0
description:
  - Checks every experiment, reads the Secrets the experiments already have, renders each experiment's
    manifests (as M(oforest.otree.otree_manifests) does) and applies them with the engine of
    M(oforest.otree.k8s_apply) (server-side apply, pruning by each experiment's owner label), all inside
    the module. The manifests never travel through the controller, so a run with many experiments costs
    about what the apply itself costs.
  - Secrets not given are generated once and kept on every later run (read back from the cluster).
  - "C(state: absent) removes an experiment's workloads and ingress but keeps its namespace, data volume
    and Secrets; C(purge: true) deletes those too (its data is lost)."
  - Returns a summary per experiment (URL, namespace, what changed); never a secret value.
author:
  - oforest.otree developers (@oforest)
extends_documentation_fragment:
  - oforest.otree.experiment
  - oforest.otree.k8s_auth
  - oforest.otree.attributes
options:
  defaults:
    description: Fields applied to every experiment that does not set them (e.g. ingress_class).
    type: dict
    default: {}
  stopped:
    description: Names of experiments whose oTree Deployment is applied with 0 replicas (stopped, data kept).
    type: list
    elements: str
    default: []
  wait:
    description: Wait for each present experiment's Deployments to roll out.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for a rollout.
    type: int
    default: 600
  workers:
    description: Requests sent at once (bounded concurrency) for each experiment.
    type: int
    default: 8
  parallel:
    description:
      - Experiments deployed at once (each in its own namespace, with its own owner label). A failed
        experiment does not stop the others; the module then fails naming each failed experiment, and
        its result still lists what the others did.
    type: int
    default: 4
  report_objects:
    description:
      - Which objects each experiment's entry in RV(experiments) lists. C(changed) (the default) lists only
        objects created, configured, pruned or kept from pruning; C(all) lists every object, unchanged ones
        too.
    type: str
    choices: [changed, all]
    default: changed
notes:
  - Run it where the kubeconfig is (usually the controller). The role M(oforest.otree.otree_experiment) does.
seealso:
  - module: oforest.otree.otree_manifests
  - module: oforest.otree.k8s_apply
"""

EXAMPLES = r"""
- name: Deploy the lab's experiments (fields as in the otree_experiment role), with a private image
  oforest.otree.otree_experiments:
    kubeconfig: ~/.kube/oforest-otree.yaml
    experiments:
      - name: trust
        host: trust.experiments.example.org
        image: registry.gitlab.example.org/lab/trust:1.4.0
        image_pull_secret: {registry: registry.gitlab.example.org, username: deploy, password: "{{ vault_token }}"}
        postgres: {version: 17, storage_size: 10Gi}
    defaults: {ingress_class: traefik}
  register: deployed

- name: Say where each one is
  ansible.builtin.debug:
    msg: "{{ deployed.experiments | map(attribute='url') | list }}"

- name: Remove one, keeping its data
  oforest.otree.otree_experiments:
    experiments:
      - name: trust
        state: absent
"""

RETURN = r"""
experiments:
  description:
    - One entry per experiment, in the order given, with the same summary fields as
      M(oforest.otree.otree_manifests) returns (C(name), C(namespace), C(state), C(purge), C(url), C(owner),
      C(secret)) and what this run did to it.
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: Where participants and the admin reach it (present experiments).
      type: str
      sample: https://pgg.experiments.example.org/
    generated:
      description: Secret keys generated in this run (empty once they exist in the cluster).
      type: list
      elements: str
    changed:
      description: Whether anything of this experiment was created, changed or deleted.
      type: bool
    counts:
      description: How many objects were created, configured, unchanged, pruned or kept.
      type: dict
      sample: {created: 0, configured: 1, unchanged: 12}
    objects:
      description: The objects per O(report_objects) (kind, name, namespace, action); no content.
      type: list
      elements: dict
requests:
  description: HTTP requests sent to the API server.
  returned: always
  type: int
failed_experiments:
  description: The experiments that failed (the message names each one and what went wrong).
  returned: failure
  type: list
  elements: str
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.oforest.otree.plugins.module_utils import otree_schema
from ansible_collections.oforest.otree.plugins.module_utils.errors import reported
from ansible_collections.oforest.otree.plugins.module_utils.k8s.client import (
    CONNECTION_ARGS, CONNECTION_EXCLUSIVE, HAS_KUBERNETES, KUBERNETES_IMPORT_ERROR, client_from_params)
from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import K8sError
from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine, object_diff
from ansible_collections.oforest.otree.plugins.module_utils.otree_render import (
    SECRET_NAME, render, resolve_secrets, stored_values, summary, validate_all)

ACTIONS = ("created", "configured", "unchanged", "pruned", "kept")


def read_secrets(client, specs):
    """{namespace: values} of the experiments' Secrets that exist (a missing one is not an error)."""
    out = {}
    for spec in specs:
        try:
            dummy, secret = client.request("GET", "/api/v1/namespaces/%s/secrets/%s" % (spec["namespace"], SECRET_NAME))
        except K8sError as e:
            if e.status == 404:
                continue
            raise
        out[spec["namespace"]] = stored_values(secret)
    return out


def main():
    argument_spec = dict(
        # types, choices, nested fields and no_log from the one experiment schema
        experiments=dict(type="list", elements="dict", required=True, options=otree_schema.argument_spec()),
        defaults=dict(type="dict", default={}),
        stopped=dict(type="list", elements="str", default=[]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
        workers=dict(type="int", default=8),
        parallel=dict(type="int", default=4),
        report_objects=dict(type="str", default="changed", choices=["changed", "all"]),
    )
    argument_spec.update(CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=CONNECTION_EXCLUSIVE,
                           supports_check_mode=True)
    p = module.params
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=to_native(KUBERNETES_IMPORT_ERROR))
    for field, minimum in (("workers", 1), ("parallel", 1), ("wait_timeout", 1)):
        if p[field] < minimum:
            module.fail_json(msg="%s: must be at least %d, got %d" % (field, minimum, p[field]), field=field)

    with reported(module, "otree_experiments"):
        names = [exp.get("name") for exp in p["experiments"]]
        unknown = [n for n in p["stopped"] if n not in names]
        if unknown:
            module.fail_json(msg="stopped: %s not among the experiments (%s)" % (
                ", ".join(unknown), ", ".join(str(n) for n in names)), field="stopped")
        experiments = [dict(exp, replicas=0) if exp.get("name") in p["stopped"] else exp for exp in p["experiments"]]
        # every experiment checked, alone and against the others, before the cluster is contacted
        specs = validate_all(experiments, p["defaults"])
        client = client_from_params(p, pool_size=p["workers"] * 2)
        stored = read_secrets(client, specs)
        for values in stored.values():  # what the cluster holds never reaches the output
            module.no_log_values.update(v for v in values.values() if len(v) >= 3)
        secrets = dict((spec["name"], resolve_secrets(spec, stored.get(spec["namespace"]))) for spec in specs)
        for values, dummy in secrets.values():
            module.no_log_values.update(v for v in values.values() if len(v) >= 3)

        def deploy(spec):
            """(entry, diffs) of one experiment, or (None, error): a failed experiment does not stop the others."""
            values, generated = secrets[spec["name"]]
            present = spec["state"] == "present"
            # absent renders nothing: pruning in the experiment's namespace removes workloads and ingress;
            # the Namespace, the data volume and the generated Secret stay unless purge is asked for
            # no CRD is applied here: a kind the server does not know (Traefik's Middleware without Traefik)
            # is reported after a few seconds, not after the rollout timeout
            engine = Engine(client, owner=summary(spec)["owner"], check_mode=module.check_mode, workers=p["workers"],
                            crd_timeout=5)
            try:
                objects = engine.run(render(spec, values) if present else [], prune=True,
                                     prune_protected=not present and spec["purge"], wait=p["wait"] and present,
                                     wait_timeout=p["wait_timeout"], diff=module._diff,
                                     prune_namespaces=[spec["namespace"]])
            except K8sError as e:
                return None, e
            counts = dict((action, sum(o["action"] == action for o in objects)) for action in ACTIONS)
            listed = [dict((k, v) for k, v in o.items() if k != "diff") for o in objects
                      if p["report_objects"] == "all" or o["action"] != "unchanged"]
            entry = dict(summary(spec), generated=generated if present else [],
                         changed=any(counts[a] for a in ("created", "configured", "pruned")),
                         counts=dict((k, v) for k, v in counts.items() if v), objects=listed)
            return entry, [object_diff(o) for o in objects if "diff" in o]

        # experiments are independent (each in its namespace, with its owner label): a few at a time
        with ThreadPoolExecutor(max_workers=max(1, min(p["parallel"], len(specs)))) as pool:
            done = list(pool.map(deploy, specs))
    out = [entry for entry, dummy in done if entry is not None]
    result = dict(changed=any(e["changed"] for e in out), experiments=out, requests=client.requests)
    if module._diff:
        result["diff"] = [d for entry, diffs in done if entry is not None for d in diffs]
    failed = [(spec, error) for spec, (entry, error) in zip(specs, done) if entry is None]
    if failed:
        module.fail_json(msg="; ".join("experiments[%s]: %s" % (spec["name"], to_native(error))
                                       for spec, error in failed), failed_experiments=[spec["name"] for spec, dummy in failed], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
