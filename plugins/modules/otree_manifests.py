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
  stopped:
    description:
      - Names of experiments whose oTree Deployment is rendered with 0 replicas (stopped, data kept),
        whatever their C(replicas) field says. The restore and resetdb operations stop oTree this way.
    type: list
    elements: str
    default: []
  operation:
    description:
      - "C(validate) only checks every experiment, alone and against the others (names, hosts and
        namespaces used once, no reserved namespace), and returns RV(experiments) without secrets or
        manifests. Run it before anything contacts a cluster (the role does): a bad entry fails naming
        the field, for example C(experiments[pgg].postgres.version)."
      - C(deploy) renders every experiment (the result's RV(experiments)).
      - The others also render, in RV(manifests), the objects of one maintenance operation on the
        experiment named by O(experiment). C(backup), a Job running the backup CronJob's container
        (same command, same env) that writes O(dump) to the backup volume; C(restore), a Job restoring
        O(dump) from the backup volume (checked against its sha256, in one transaction); C(resetdb), a
        Job running C(otree resetdb --noinput) with the experiment's image and environment;
        C(transfer), a short-lived Pod mounting the backup volume, to copy dumps to or from the
        controller.
    type: str
    choices: [validate, deploy, backup, restore, resetdb, transfer]
    default: deploy
  experiment:
    description: The experiment an operation other than C(deploy) is for (its name).
    type: str
  job_name:
    description:
      - Name of the Job or Pod an operation creates. Default C(<operation>-<UTC time>) (unique per run),
        C(backup-transfer) for C(transfer).
    type: str
  dump:
    description:
      - File name of the dump on the backup volume, for C(restore) (read) and C(backup) (written; default
        C(otree-<UTC time>[-<label>].dump)). Names start with C(otree-) and end with C(.dump).
    type: str
  label:
    description: For C(backup) without O(dump), a word added to the dump's name (e.g. C(before-restore)).
    type: str
extends_documentation_fragment:
  - oforest.otree.experiment
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
- name: Check the experiments before the cluster is contacted
  oforest.otree.otree_manifests:
    experiments: "{{ otree_experiment_experiments }}"
    operation: validate
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

- name: The Job that backs up one experiment now
  oforest.otree.otree_manifests:
    experiments: "{{ otree_experiment_experiments }}"
    operation: backup
    experiment: public-goods
    label: manual
  register: backup_job  # backup_job.operation.dump is the dump's name
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
      description: Secret keys generated in this run (empty once they exist in the cluster; not with C(validate)).
      type: list
      elements: str
    manifests:
      description: The manifests (contain the Secret; not with C(validate)).
      type: list
      elements: dict
manifests:
  description: The objects of the operation (empty for C(deploy)); they contain no secret values.
  returned: always
  type: list
  elements: dict
operation:
  description: What an operation other than C(deploy) and C(validate) needs to run (empty for those two).
  returned: always
  type: dict
  contains:
    experiment:
      description: The experiment's name.
      type: str
    namespace:
      description: The experiment's namespace, where the Job or Pod runs.
      type: str
    name:
      description: The Job's or Pod's name.
      type: str
      sample: backup-20261127t101500z
    dump:
      description: The dump's file name on the backup volume (C(backup), C(restore)).
      type: str
      sample: otree-20261127T101500Z-manual.dump
    owner:
      description: The owner label value of the operation's objects (not the experiment's, so they are never pruned
        with it).
      type: str
    experiment_owner:
      description: The experiment's owner label value.
      type: str
    stop:
      description: The experiment's oTree Deployment with 0 replicas (no secret values).
      type: list
      elements: dict
    start:
      description: The experiment's oTree Deployment as it runs (no secret values).
      type: list
      elements: dict
"""

import datetime
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oforest.otree.plugins.module_utils import otree_schema
from ansible_collections.oforest.otree.plugins.module_utils.errors import reported
from ansible_collections.oforest.otree.plugins.module_utils.otree_render import (
    DNS_LABEL, SECRET_KEYS, SECRET_NAME, backup_job, backup_reader_pod, render_all, resetdb_job,
    restore_job, operations_owner, owner_of, stored_values, summary, validate_all)

DUMP_NAME = re.compile(r"^otree-[A-Za-z0-9._-]+\.dump$")
LABEL = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def operation_manifests(module, rendered):
    """The Job or Pod of a maintenance operation on one experiment, and what the role needs to run it:
    (manifests, operation) where operation names the Job or Pod, the dump, the namespace, the owner
    label of the operation's objects, and the oTree Deployment stopped (replicas 0) and as it runs."""
    p = module.params
    if not p["experiment"]:
        module.fail_json(msg="experiment: name the experiment for operation %s" % p["operation"], field="experiment")
    found = [item for item in rendered if item["spec"]["name"] == p["experiment"]]
    if not found:
        module.fail_json(msg="experiment: %r is not among the experiments (%s)" % (
            p["experiment"], ", ".join(item["spec"]["name"] for item in rendered) or "none"), field="experiment")
    item = found[0]
    spec = item["spec"]
    if spec["state"] != "present":
        module.fail_json(msg="experiment: %s has state absent; %s needs a running experiment" % (
            spec["name"], p["operation"]), field="experiment")
    stamp = datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = p["job_name"] or ("backup-transfer" if p["operation"] == "transfer" else "%s-%s" % (
        p["operation"], stamp.lower()))
    if not DNS_LABEL.match(name) or len(name) > 63:
        module.fail_json(msg="job_name: %r is not a valid object name (lowercase letters, digits, '-')" % name,
                         field="job_name")
    if p["label"] is not None and not LABEL.match(p["label"]):
        module.fail_json(msg="label: %r is not a word for a file name (letters, digits, '.', '_', '-'; at most 40)"
                         % (p["label"],), field="label")
    dump = p["dump"]
    if p["operation"] == "backup" and not dump:
        dump = "otree-%s%s.dump" % (stamp, "-" + p["label"] if p["label"] else "")
    if p["operation"] in ("backup", "restore") and (not dump or not DUMP_NAME.match(dump)):
        module.fail_json(msg="dump: %r is not a dump file name like otree-20261127T031700Z.dump (a file on the "
                         "experiment's backup volume)" % (dump,), field="dump")
    if p["operation"] == "backup":
        manifests = [backup_job(spec, dump, name)]
    elif p["operation"] == "restore":
        manifests = [restore_job(spec, dump, name)]
    elif p["operation"] == "resetdb":
        manifests = [resetdb_job(spec, name)]
    else:
        manifests = [backup_reader_pod(spec, name)]
    # the oTree Deployment alone (it refers to the Secret by name and holds no secret value)
    running = [obj for obj in item["manifests"] if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "otree"]
    stopped = [dict(obj, spec=dict(obj["spec"], replicas=0)) for obj in running]
    return manifests, {"experiment": spec["name"], "namespace": spec["namespace"], "name": name, "dump": dump,
                       "owner": operations_owner(spec), "experiment_owner": owner_of(spec),
                       "stop": stopped, "start": running}


def existing_by_namespace(module, secrets):
    out = {}
    for obj in secrets or []:
        if not isinstance(obj, dict):
            module.fail_json(msg="existing_secrets: each item must be a Secret object (as k8s_info returns it)",
                             field="existing_secrets")
        if (obj.get("metadata") or {}).get("name") == SECRET_NAME:
            with reported(module, "otree_manifests"):
                out[obj["metadata"].get("namespace")] = stored_values(obj)
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # types, choices, nested fields and no_log from the one experiment schema
            experiments=dict(type="list", elements="dict", required=True, options=otree_schema.argument_spec()),
            defaults=dict(type="dict", default={}),
            # not no_log: that would mask every string in it (apiVersion, names) throughout the result;
            # the secret values are registered below and the parameter is not logged (see main)
            existing_secrets=dict(type="list", elements="dict", default=[], no_log=False),
            stopped=dict(type="list", elements="str", default=[]),
            operation=dict(type="str", default="deploy",
                           choices=["validate", "deploy", "backup", "restore", "resetdb", "transfer"]),
            experiment=dict(type="str"),
            job_name=dict(type="str"),
            dump=dict(type="str"),
            label=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    by_namespace = existing_by_namespace(module, module.params["existing_secrets"])
    # the logged invocation shows a summary, never the stored (base64) values
    module.params["existing_secrets"] = ["%d stored secret(s) read, values not shown" % len(by_namespace)]
    # secret values (given or stored) never reach the output, the logged arguments included
    for values in by_namespace.values():
        module.no_log_values.update(v for v in values.values() if len(v) >= 3)
    with reported(module, "otree_manifests"):
        experiments = module.params["experiments"]
        names = [exp.get("name") for exp in experiments if isinstance(exp, dict)]
        unknown = [n for n in module.params["stopped"] if n not in names]
        if unknown:
            module.fail_json(msg="stopped: %s not among the experiments (%s)" % (", ".join(unknown), ", ".join(
                str(n) for n in names)), field="stopped")
        experiments = [dict(exp, replicas=0) if isinstance(exp, dict) and exp.get("name") in module.params["stopped"]
                       else exp for exp in experiments]
        specs = validate_all(experiments, module.params["defaults"])
        if module.params["operation"] == "validate":
            module.exit_json(changed=False, manifests=[], secret_keys=list(SECRET_KEYS), experiments=[summary(
                spec) for spec in specs])
        # stored secrets belong to the experiment whose namespace holds them (the renderer names it)
        existing = dict((spec["name"], by_namespace[spec["namespace"]]) for spec in specs
                        if spec["namespace"] in by_namespace)
        rendered = render_all(experiments, existing, module.params["defaults"])
    ops, operation = operation_manifests(module, rendered) if module.params["operation"] != "deploy" else ([], {})

    out = [dict(summary(item["spec"]), owner=item["owner"], manifests=item["manifests"],
                generated=item["generated"] if item["spec"]["state"] == "present" else []) for item in rendered]
    module.exit_json(changed=False, experiments=out, manifests=ops, operation=operation, secret_keys=list(SECRET_KEYS))


if __name__ == "__main__":
    main()
