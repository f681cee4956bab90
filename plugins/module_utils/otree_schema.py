# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The experiment's schema, defined once: every field, its type, nested options, default, choices and
description.

Used by:
- the renderer (otree_render): the defaults an experiment gets and the nested fields it may set;
- the otree_manifests module: its argument spec (types, choices, nested options, no_log) built by
  `argument_spec()`;
- scripts/experiment_schema.py, which writes from it the role's `otree_experiment_experiments` options
  (roles/otree_experiment/meta/argument_specs.yml) and the module's documentation fragment
  (plugins/doc_fragments/experiment.py); `--check` (a unit test) fails when either is out of date.

The renderer keeps only what a schema cannot say: FQDN, a pinned image, quantities above zero, unique
name/host/namespace, reserved namespaces. Must run on Python 3.8.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

_RESOURCES_DOC = "{requests: {cpu, memory}, limits: {cpu, memory}} as Kubernetes quantities (250m, 512Mi)."


def _resources(description, requests, limits):
    def section(desc, values):
        return {"description": desc, "type": "dict", "options": {
            "cpu": {"description": "CPU, e.g. 250m or 1.", "type": "str", "default": values[0]},
            "memory": {"description": "Memory, e.g. 512Mi or 1Gi.", "type": "str", "default": values[1]}}}
    return {"description": "%s %s" % (description, _RESOURCES_DOC), "type": "dict", "options": {
        "requests": section("What the container is guaranteed.", requests),
        "limits": section("The most it may use.", limits)}}


_BACKUP = {
    "enabled": {"description": "Run the backup CronJob.", "type": "bool", "default": True},
    "schedule": {"description": "When, as a cron schedule with 5 fields (UTC).", "type": "str",
                 "default": "17 3 * * *"},
    "retention_days": {"description": "Days a nightly dump is kept.", "type": "int", "default": 14},
    "storage_size": {"description": "Size of the backup volume.", "type": "str", "default": "5Gi"},
    "storage_class": {"description": "Storage class of the backup volume (none: the cluster's default).",
                      "type": "str", "default": None},
}

# One experiment. Order is the order of the documentation.
EXPERIMENT = {
    "name": {"description": "Experiment name (1-40 lowercase letters, digits, '-'); its namespace is otree-<name>.",
             "type": "str", "required": True},
    "host": {"description": "The fully qualified host name participants use (a DNS record pointing at the cluster).",
             "type": "str"},
    "image": {"description": "The oTree image with a pinned tag or digest (not :latest).", "type": "str"},
    "image_pull_secret": {
        "description": "Credentials for a private registry (a GitLab deploy token with read_registry).",
        "type": "dict", "default": None, "no_log": False, "options": {  # only its password is secret
            "registry": {"description": "Registry host, e.g. registry.gitlab.example.org.", "type": "str",
                         "required": True},
            "username": {"description": "Deploy token username.", "type": "str", "required": True},
            "password": {"description": "Deploy token.", "type": "str", "required": True, "no_log": True}}},
    "auth_level": {"description": "oTree's OTREE_AUTH_LEVEL.", "type": "str", "choices": ["STUDY", "DEMO"],
                   "default": "STUDY"},
    "admin_password": {"description": "oTree admin password (12+ characters). Generated and kept when not given.",
                       "type": "str", "no_log": True, "default": None},
    "rest_key": {"description": "OTREE_REST_KEY (12+ characters). Generated and kept when not given.",
                 "type": "str", "no_log": True, "default": None},
    "production": {"description": "Set OTREE_PRODUCTION=1.", "type": "bool", "default": True},
    "extra_env": {"description": "More environment variables for oTree (not the ones the collection sets).",
                  "type": "dict", "default": {}},
    "resources": _resources("oTree container requests and limits:", ("250m", "512Mi"), ("1", "1Gi")),
    "run_as_user": {"description": "Numeric non-root user id the oTree image runs as (the scaffolded Dockerfile's "
                                   "USER).", "type": "int", "default": 10001},
    "postgres": {"description": "Postgres settings.", "type": "dict", "options": {
        "version": {"description": "Pinned major version, 13-18 (a new major cannot read an old data directory).",
                    "type": "int", "default": 16},
        "storage_size": {"description": "Size of the data volume.", "type": "str", "default": "5Gi"},
        "storage_class": {"description": "Storage class of the data volume (none: the cluster's default).",
                          "type": "str", "default": None},
        "resources": _resources("Postgres container requests and limits:", ("100m", "256Mi"), ("1", "1Gi"))}},
    "backup": {"description": "Nightly backups (pg_dump, custom format) to a backup volume in the experiment's "
                              "namespace.", "type": "dict", "options": _BACKUP},
    "ingress_class": {"description": "Ingress class (traefik, or public/nginx for ingress-nginx).", "type": "str",
                      "choices": ["public", "nginx", "traefik"], "default": "public"},
    "cluster_issuer": {"description": "cert-manager ClusterIssuer for the TLS certificate.", "type": "str",
                       "default": "letsencrypt-prod"},
    "websocket_timeout": {"description": "Seconds an idle websocket stays open through the ingress (60 or more).",
                          "type": "int", "default": 3600},
    "replicas": {"description": "1 runs oTree, 0 stops it (data kept). oTree is one process; more than 1 is refused.",
                 "type": "int", "choices": [0, 1], "default": 1},
    "namespace": {"description": "Namespace (default otree-<name>); not Kubernetes' or an addon's.", "type": "str",
                  "default": None},
    "state": {"description": "present, or absent to remove the workloads and ingress (data kept).", "type": "str",
              "choices": ["present", "absent"], "default": "present"},
    "purge": {"description": "With state absent, also delete the namespace, data volume and secrets.", "type": "bool",
              "default": False},
}

# Fields without a default: given by the user (name, host, image); the renderer checks host and image.
REQUIRED_WHEN_PRESENT = ("host", "image")


def defaults(options=None):
    """Every field's default, nested ones as mappings (a nested field with its own default keeps it)."""
    out = {}
    for key, opt in (EXPERIMENT if options is None else options).items():
        if "default" in opt:
            out[key] = copy.deepcopy(opt["default"])
        elif "options" in opt:
            out[key] = defaults(opt["options"])
    return out


def nested_fields(options=None, prefix=""):
    """{'postgres': ('version', ...), 'postgres.resources': ('requests', 'limits'), ...}: the keys each
    nested mapping may have (free-form mappings such as extra_env are not listed)."""
    out = {}
    for key, opt in (EXPERIMENT if options is None else options).items():
        if "options" in opt:
            out[prefix + key] = tuple(opt["options"])
            out.update(nested_fields(opt["options"], prefix + key + "."))
    return out


def argument_spec(options=None):
    """The module's argument spec for one experiment: types, choices, nested options and no_log, but no
    defaults: a field left out stays None, so the module's `defaults` and the renderer's fill it."""
    out = {}
    for key, opt in (EXPERIMENT if options is None else options).items():
        spec = dict((k, v) for k, v in opt.items() if k in ("type", "choices", "no_log", "required"))
        if "options" in opt:
            spec["options"] = argument_spec(opt["options"])
        out[key] = spec
    return out


def documentation(options=None, default_in_description=False):
    """The fields as argument-spec documentation (description, type, default, choices, required, no_log).
    With `default_in_description` (the module's doc fragment, whose argument spec has no defaults) a
    default is said in the description instead."""
    out = {}
    for key, opt in (EXPERIMENT if options is None else options).items():
        doc = {"description": opt["description"], "type": opt["type"]}
        for field in ("required", "choices", "no_log"):
            if field in opt:
                doc[field] = opt[field]
        if opt.get("default") not in (None, {}):
            if default_in_description:
                default = str(opt["default"]).lower() if isinstance(opt["default"], bool) else opt["default"]
                doc["description"] = "%s Default: C(%s)." % (opt["description"], default)
            else:
                doc["default"] = opt["default"]
        if "options" in opt:
            doc["options"] = documentation(opt["options"], default_in_description)
        out[key] = doc
    return out
