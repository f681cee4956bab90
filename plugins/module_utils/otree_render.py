# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure renderer: a typed oTree experiment spec -> the Kubernetes manifests that run it.

No cluster access. Used by the otree_manifests module (the role) and by the experiment pipeline
scaffold, so both paths render the same objects. Follows oTree's runtime contract:
- one process (`otree prodserver 8000`, in-process channel layer): replicas 1, strategy Recreate;
- DATABASE_URL always set (without it oTree silently uses SQLite); OTREE_IN_MEMORY never set;
- OTREE_PRODUCTION, OTREE_AUTH_LEVEL, OTREE_ADMIN_PASSWORD, OTREE_REST_KEY from a Secret;
- FORWARDED_ALLOW_IPS so uvicorn trusts the ingress' X-Forwarded-Proto (https links);
- probes on a static file oTree ships (/static/favicon.ico) and on the TCP port: oTree has no health
  endpoint;
- secrets generated once and kept: a changed admin password breaks an existing oTree database.
Must run on Python 3.8.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import re
import secrets
import string

from ansible_collections.oforest.otree.plugins.module_utils import otree_schema
from ansible_collections.oforest.otree.plugins.module_utils.errors import CollectionError

OTREE_PORT = 8000
PROBE_PATH = "/static/favicon.ico"
SECRET_NAME = "otree-secrets"
PULL_SECRET_NAME = "registry-credentials"
GENERATED_ANNOTATION = "oforest.otree/generated"
EXPERIMENT_LABEL = "oforest.otree/experiment"
SECRET_KEYS = ("POSTGRES_PASSWORD", "DATABASE_URL", "OTREE_ADMIN_PASSWORD", "OTREE_REST_KEY")
RESERVED_ENV = ("DATABASE_URL", "OTREE_PRODUCTION", "OTREE_AUTH_LEVEL", "OTREE_ADMIN_PASSWORD", "OTREE_REST_KEY",
                "OTREE_IN_MEMORY", "PORT", "FORWARDED_ALLOW_IPS")
SUPPORTED_POSTGRES = range(13, 19)  # official image majors we render for
MIN_PASSWORD = 12
INGRESS_CLASSES = ("public", "nginx", "traefik")
# Namespaces an experiment must never take: Kubernetes' own and those of MicroK8s' addons (an
# experiment there would get Pod Security restricted, our owner label and pruning).
RESERVED_NAMESPACES = ("default", "ingress", "cert-manager", "container-registry", "metallb-system", "observability",
                       "gitlab-runner", "local-path-storage")

# The experiment's fields and defaults are defined once, in otree_schema.
DEFAULTS = otree_schema.defaults()

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FQDN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# [registry[:port]/]path[:tag][@digest]: a port only on the first component and only before a '/', so
# a numeric tag (registry.example.org/lab/pgg:20241201) is a tag, not a port
IMAGE = re.compile(r"^(?P<repo>(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
                   r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class SpecError(CollectionError, ValueError):
    """A bad experiment spec: `field` names what to fix."""

    def __init__(self, field, message):
        super(SpecError, self).__init__("%s: %s" % (field, message), field=field)


def _merge(defaults, given):
    out = dict(defaults)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is not None or key not in out:
            out[key] = value
    return out


# The nested fields: their known keys (a mapping given where the schema has one is checked against it);
# the keys of requests/limits are checked with their quantities.
NESTED = dict((path, keys) for path, keys in otree_schema.nested_fields().items()
              if not path.endswith((".requests", ".limits")) and path != "image_pull_secret")
EXAMPLES = {"postgres": "postgres: {version: 16, storage_size: 5Gi}",
            "backup": "backup: {enabled: true, schedule: '17 3 * * *'}",
            "resources": "resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}",
            "postgres.resources": "resources: {requests: {cpu: 100m, memory: 256Mi}}",
            "extra_env": "extra_env: {OTREE_PRODUCTION_SETTING: '1'}"}


def _check_nested(spec, where):
    """Mappings where mappings belong, and only the keys we know: before merging, so a string given for
    `postgres` is named instead of crashing the renderer."""
    for path, known in sorted(NESTED.items()) + [("extra_env", None)]:
        value = spec
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, dict):
            raise SpecError("%s.%s" % (where, path), "must be a mapping, got %r; write it like %s" % (
                value, EXAMPLES[path]))
        unknown = sorted(set(value) - set(known)) if known is not None else []
        if unknown:
            raise SpecError("%s.%s" % (where, path), "unknown field(s) %s (known: %s)" % (
                ", ".join(map(str, unknown)), ", ".join(sorted(known))))


def normalize_spec(spec, index=0):
    """Defaults filled in and every field checked; raises SpecError naming the field."""
    if not isinstance(spec, dict):
        raise SpecError("experiments[%d]" % index, "must be a mapping, got %s" % type(spec).__name__)
    name = spec.get("name")
    where = "experiments[%s]" % (name if isinstance(name, str) and name else index)
    unknown = sorted(set(spec) - set(otree_schema.EXPERIMENT))
    if unknown:
        raise SpecError(where, "unknown field(s) %s (known: %s)" % (
            ", ".join(unknown), ", ".join(otree_schema.EXPERIMENT)))
    if spec.get("state", DEFAULTS["state"]) != "absent":  # removal needs only the name (and namespace)
        _check_nested(spec, where)
    s = _merge(DEFAULTS, spec)
    s["name"] = name

    if not isinstance(name, str) or not DNS_LABEL.match(name) or len(name) > 40:
        raise SpecError(where + ".name", "%r is not a valid experiment name: use 1-40 lowercase letters, digits and "
                        "'-', starting and ending with a letter or digit (e.g. 'public-goods')" % (name,))
    s["namespace"] = s["namespace"] or "otree-%s" % name
    if not isinstance(s["namespace"], str) or not DNS_LABEL.match(s["namespace"]) or len(s["namespace"]) > 63:
        raise SpecError(where + ".namespace", "%r is not a valid namespace name (lowercase letters, digits, '-')"
                        % (s["namespace"],))
    reserved = s["namespace"] in RESERVED_NAMESPACES or s["namespace"].startswith("kube-")
    if reserved and (s.get("state") != "absent" or s.get("purge") is True):  # taking one down stays possible
        raise SpecError(where + ".namespace", "%s is reserved for Kubernetes or a MicroK8s addon; leave namespace out "
                        "(otree-%s) or choose one of your own" % (s["namespace"], name))
    if s["state"] not in ("present", "absent"):
        raise SpecError(where + ".state", "must be 'present' or 'absent', got %r" % (s["state"],))
    if not isinstance(s["purge"], bool):
        raise SpecError(where + ".purge", "must be true or false")
    if s["state"] == "absent":
        return s  # removal needs only the name (and namespace)

    host = s.get("host")
    if not isinstance(host, str) or not FQDN.match(host):
        raise SpecError(where + ".host", "%r is not a fully qualified domain name: give the public name that points "
                        "to the cluster, e.g. 'pgg.experiments.example.org'" % (host,))
    image = s.get("image")
    m = IMAGE.match(image) if isinstance(image, str) else None
    if not m:
        raise SpecError(where + ".image", "%r is not a valid image reference (registry/path/name:tag)" % (image,))
    if not m.group("tag") and not m.group("digest"):
        raise SpecError(where + ".image", "%r has no tag: pin the image (e.g. ':%s' or a commit SHA tag); an untagged "
                        "image means ':latest', which changes under a running experiment" % (image, "1.0.0"))
    if m.group("tag") == "latest" and not m.group("digest"):
        raise SpecError(where + ".image", "%r uses ':latest': pin a version or commit SHA tag" % image)
    if s["auth_level"] not in ("STUDY", "DEMO"):
        raise SpecError(where + ".auth_level", "must be STUDY or DEMO, got %r" % (s["auth_level"],))
    if not isinstance(s["production"], bool):
        raise SpecError(where + ".production", "must be true or false")
    for field, minimum in (("admin_password", MIN_PASSWORD), ("rest_key", MIN_PASSWORD)):
        value = s[field]
        if value is not None and (not isinstance(value, str) or len(value) < minimum):
            raise SpecError(where + "." + field, "too short: use at least %d characters (or leave it out and one is "
                            "generated and kept)" % minimum)
    if not isinstance(s["extra_env"], dict):
        raise SpecError(where + ".extra_env", "must be a mapping of variable names to values")
    for key, value in s["extra_env"].items():
        if key in RESERVED_ENV:
            raise SpecError(where + ".extra_env." + key, "is set by the collection%s; remove it from extra_env" % (
                " and would make oTree ignore DATABASE_URL" if key == "OTREE_IN_MEMORY" else ""))
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)):
            raise SpecError(where + ".extra_env." + str(key), "is not a valid environment variable name")
        if not isinstance(value, (str, int, float, bool)):
            raise SpecError(where + ".extra_env." + key, "must be a string or number")
    _check_resources(s["resources"], where + ".resources")
    pg = s["postgres"]
    version = pg.get("version")
    if isinstance(version, str) and version.isdigit():
        version = pg["version"] = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version not in SUPPORTED_POSTGRES:
        raise SpecError(where + ".postgres.version", "must be a Postgres major version from %d to %d (the major is "
                        "pinned: a new major cannot read an old data directory), got %r" % (
                            SUPPORTED_POSTGRES[0], SUPPORTED_POSTGRES[-1], version))
    _check_size(pg.get("storage_size"), where + ".postgres.storage_size")
    _check_resources(pg["resources"], where + ".postgres.resources")
    bk = s["backup"]
    if not isinstance(bk.get("enabled"), bool):
        raise SpecError(where + ".backup.enabled", "must be true or false")
    if not isinstance(bk.get("schedule"), str) or len(bk["schedule"].split()) != 5:
        raise SpecError(where + ".backup.schedule", "%r is not a cron schedule with 5 fields, e.g. '17 3 * * *' "
                        "(daily at 03:17)" % (bk.get("schedule"),))
    if not isinstance(bk.get("retention_days"), int) or isinstance(bk["retention_days"], bool) or \
            bk["retention_days"] < 1:
        raise SpecError(where + ".backup.retention_days", "must be a number of days, at least 1")
    _check_size(bk.get("storage_size"), where + ".backup.storage_size")
    if s["ingress_class"] not in INGRESS_CLASSES:
        raise SpecError(where + ".ingress_class", "must be one of %s (MicroK8s: 'public' for ingress-nginx up to "
                        "1.34, 'traefik' from 1.35), got %r" % (", ".join(INGRESS_CLASSES), s["ingress_class"]))
    if not isinstance(s["cluster_issuer"], str) or not DNS_LABEL.match(s["cluster_issuer"].replace(".", "-")):
        raise SpecError(where + ".cluster_issuer", "must name a cert-manager ClusterIssuer, e.g. letsencrypt-prod")
    ps = s["image_pull_secret"]
    if ps is not None:
        missing = [k for k in ("registry", "username", "password") if not (isinstance(ps, dict) and ps.get(k))]
        if missing:
            raise SpecError(where + ".image_pull_secret", "needs %s (a GitLab deploy token: registry "
                            "'registry.gitlab.example.org', its username and the token as password)" % ", ".join(missing))
    if not _whole(s["run_as_user"]) or s["run_as_user"] < 1:
        raise SpecError(where + ".run_as_user", "must be a non-root numeric user id (the image's USER), got %r"
                        % (s["run_as_user"],))
    if not _whole(s["websocket_timeout"]) or s["websocket_timeout"] < 60:
        raise SpecError(where + ".websocket_timeout", "must be a whole number of seconds, at least 60 (e.g. 3600), "
                        "got %r" % (s["websocket_timeout"],))
    if s["replicas"] not in (0, 1) or isinstance(s["replicas"], bool):
        raise SpecError(where + ".replicas", "must be 1 (running) or 0 (stopped, data kept), got %r: oTree is one "
                        "process with an in-memory websocket layer, a second replica breaks running sessions" % (
                            s["replicas"],))
    return s


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_quantity(value):
    m = QUANTITY.match(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    return bool(m) and float(re.match(r"[0-9.]+", str(value)).group(0)) > 0


def _check_size(value, where):
    if not isinstance(value, str) or not QUANTITY.match(value):
        raise SpecError(where, "%r is not a quantity like '5Gi'" % (value,))
    if not _positive_quantity(value):
        raise SpecError(where, "must be more than zero, e.g. '5Gi'")


def _check_resources(res, where):
    if not isinstance(res, dict):
        raise SpecError(where, "must be a mapping with requests and limits")
    for section in ("requests", "limits"):
        if not isinstance(res.get(section) or {}, dict):
            raise SpecError("%s.%s" % (where, section), "must be a mapping like {cpu: 250m, memory: 512Mi}")
        for key, value in (res.get(section) or {}).items():
            if key not in ("cpu", "memory"):
                raise SpecError("%s.%s.%s" % (where, section, key), "only cpu and memory are supported")
            if not QUANTITY.match(str(value)):
                raise SpecError("%s.%s.%s" % (where, section, key), "%r is not a quantity like '500m' or '1Gi'"
                                % (value,))
            if not _positive_quantity(value):
                raise SpecError("%s.%s.%s" % (where, section, key), "must be more than zero, e.g. '500m' or '1Gi'")


def generate_password(length=32):
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for dummy in range(length))


def resolve_secrets(spec, existing=None):
    """The experiment's secret values: given ones win, then what the cluster already holds, then new
    random ones. Returns (values, generated_keys)."""
    existing = existing or {}
    values, generated = {}, []
    for key, given in (("POSTGRES_PASSWORD", None), ("OTREE_ADMIN_PASSWORD", spec.get("admin_password")),
                       ("OTREE_REST_KEY", spec.get("rest_key"))):
        if given:
            values[key] = given
        elif existing.get(key):
            values[key] = existing[key]
        else:
            values[key] = generate_password()
            generated.append(key)
    values["DATABASE_URL"] = "postgresql://otree:%s@postgres:5432/otree" % values["POSTGRES_PASSWORD"]
    return values, generated


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def labels(spec, component):
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": spec["name"],
            "app.kubernetes.io/part-of": "otree", "app.kubernetes.io/managed-by": "oforest.otree",
            EXPERIMENT_LABEL: spec["name"]}


def _selector(spec, component):
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": spec["name"]}


def _restricted(user, group=None):
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                 "runAsUser": user, "runAsGroup": group or user, "capabilities": {"drop": ["ALL"]},
                 "seccompProfile": {"type": "RuntimeDefault"}}
    return container


def _password_volume():
    return {"name": "password", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o440,
                                           "items": [{"key": "POSTGRES_PASSWORD", "path": "POSTGRES_PASSWORD"}]}}


def postgres_paths(version):
    """(volume mountPath, PGDATA) right for the official image of this major."""
    if version >= 18:  # 18+ keeps data under /var/lib/postgresql/<major>/docker: mount the parent
        return "/var/lib/postgresql", "/var/lib/postgresql/%d/docker" % version
    return "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"  # a subdir: lost+found safe


def render(spec, secret_values, image_override=None):
    """Manifests for one normalised spec (state present): namespace first, data, then workloads."""
    ns = spec["namespace"]
    name = spec["name"]
    pg = spec["postgres"]
    mount, pgdata = postgres_paths(pg["version"])
    image = image_override or spec["image"]

    def meta(obj_name, component):
        return {"name": obj_name, "namespace": ns, "labels": labels(spec, component)}
    out = []
    out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": dict(labels(spec, "otree"), **{
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted"})}})
    secret_meta = meta(SECRET_NAME, "otree")
    secret_meta["annotations"] = {GENERATED_ANNOTATION: "true"}  # pruning keeps it: the data depends on it
    out.append({"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta, "type": "Opaque",
                "data": dict((k, _b64(secret_values[k])) for k in SECRET_KEYS)})
    pull_secrets = []
    if spec["image_pull_secret"]:
        ps = spec["image_pull_secret"]
        auth = _b64("%s:%s" % (ps["username"], ps["password"]))
        config = {"auths": {ps["registry"]: {"username": ps["username"], "password": ps["password"], "auth": auth}}}
        out.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta(PULL_SECRET_NAME, "otree"),
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": _b64(json.dumps(config, sort_keys=True))}})
        pull_secrets = [{"name": PULL_SECRET_NAME}]
    for sa in ("otree", "postgres"):
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(sa, sa),
                    "automountServiceAccountToken": False})

    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("postgres-data", "postgres"),
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": pg["storage_size"]}}}}
    if pg.get("storage_class"):
        pvc["spec"]["storageClassName"] = pg["storage_class"]
    out.append(pvc)

    pg_container = {
        "name": "postgres", "image": "docker.io/library/postgres:%d" % pg["version"],
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "postgres", "containerPort": 5432, "protocol": "TCP"}],
        "env": [{"name": "POSTGRES_USER", "value": "otree"}, {"name": "POSTGRES_DB", "value": "otree"},
                {"name": "PGDATA", "value": pgdata},
                # the official image reads *_FILE variables: the password as a file, not in the env
                {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/postgres/POSTGRES_PASSWORD"}],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", "otree", "-d", "otree", "-h", "127.0.0.1"]},
                           "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {"exec": {"command": ["pg_isready", "-U", "otree", "-d", "otree", "-h", "127.0.0.1"]},
                          "initialDelaySeconds": 30, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 6},
        "resources": pg["resources"],
        "securityContext": _restricted(999),
        "volumeMounts": [{"name": "data", "mountPath": mount}, {"name": "run", "mountPath": "/var/run/postgresql"},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "password", "mountPath": "/run/secrets/postgres", "readOnly": True}],
    }
    out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("postgres", "postgres"), "spec": {
        "replicas": 1, "strategy": {"type": "Recreate"},  # one writer on a ReadWriteOnce volume
        "selector": {"matchLabels": _selector(spec, "postgres")},
        "template": {"metadata": {"labels": labels(spec, "postgres")}, "spec": {
            "serviceAccountName": "postgres", "automountServiceAccountToken": False,
            "securityContext": {"fsGroup": 999, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [pg_container],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "postgres-data"}},
                        {"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                        _password_volume()]}}}})
    out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta("postgres", "postgres"), "spec": {
        "type": "ClusterIP", "selector": _selector(spec, "postgres"),
        "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres", "protocol": "TCP"}]}})
    out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta("postgres-only-from-otree", "postgres"), "spec": {
                    "podSelector": {"matchLabels": _selector(spec, "postgres")}, "policyTypes": ["Ingress"],
                    # oTree, the backup/restore pods and the resetdb Job's pod (otree resetdb)
                    "ingress": [{"from": [{"podSelector": {"matchLabels": _selector(spec, "otree")}},
                                          {"podSelector": {"matchLabels": _selector(spec, "postgres-backup")}},
                                          {"podSelector": {"matchLabels": _selector(spec, "otree-resetdb")}}],
                                 "ports": [{"port": 5432, "protocol": "TCP"}]}]}})
    if spec["backup"]["enabled"]:
        out += backup_objects(spec)

    out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta("otree-http-only", "otree"), "spec": {
                    # the ingress controller (any namespace) reaches oTree's HTTP port, nothing else
                    "podSelector": {"matchLabels": _selector(spec, "otree")}, "policyTypes": ["Ingress"],
                    "ingress": [{"ports": [{"port": OTREE_PORT, "protocol": "TCP"}]}]}})
    out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("otree", "otree"),
                "spec": otree_deployment_spec(spec, image, pull_secrets)})
    out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta("otree", "otree"), "spec": {
        "type": "ClusterIP", "selector": _selector(spec, "otree"),
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}})
    out += ingress_objects(spec)
    return out


BACKUP_DIR = "/backups"
# pg_dump in custom format to a temporary name, then renamed (a half-written dump never looks done),
# a sha256 beside it, and dumps older than the retention removed. Runs in the official postgres
# image of the server's major (pg_dump must not be older than the server).
BACKUP_SCRIPT = (
    'export PGPASSWORD="$(cat "$PGPASSWORD_FILE")"; '
    'f="$BACKUP_DIR/${DUMP:-otree-$(date -u +%Y%m%dT%H%M%SZ).dump}"; '
    'pg_dump --format=custom --no-owner --file="$f.part"; '
    'mv "$f.part" "$f"; '
    '(cd "$BACKUP_DIR" && sha256sum "$(basename "$f")" > "$(basename "$f").sha256"); '
    'find "$BACKUP_DIR" -name "otree-*.dump*" -mtime +"$RETENTION_DAYS" -delete; '
    'echo "backup: $f $(du -h "$f" | cut -f1)"')
# Restores one dump (checked against its sha256) into the database, in one transaction: either the
# whole dump is in, or nothing changed. oTree must be scaled to 0 meanwhile (the restore playbook does).
RESTORE_SCRIPT = (
    'export PGPASSWORD="$(cat "$PGPASSWORD_FILE")"; '
    'test -f "$BACKUP_DIR/$DUMP" || { echo "no dump $DUMP in $BACKUP_DIR"; ls "$BACKUP_DIR"; exit 1; }; '
    '(cd "$BACKUP_DIR" && sha256sum -c "$DUMP.sha256"); '
    'pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$PGDATABASE" "$BACKUP_DIR/$DUMP"; '
    'echo "restored: $DUMP"')


# A new pod's network, NetworkPolicy included, is programmed while the pod starts: its first
# connection can be refused for a moment (seen on the node with kube-router: pg_dump refused at
# once, pg_isready answered a second later; Calico programs policy asynchronously too). Every pod
# that uses Postgres therefore waits for it first, and says what to check if it never answers.
PG_ADDRESS = ({"name": "PGHOST", "value": "postgres"}, {"name": "PGPORT", "value": "5432"})  # the Service
WAIT_FOR_POSTGRES = (
    'for i in $(seq 1 60); do pg_isready -q -t 2 && exit 0; sleep 1; done; '
    'echo "Postgres at $PGHOST:$PGPORT did not answer for 60 s: is its pod running, and does the'
    ' NetworkPolicy postgres-only-from-otree admit this pod?" >&2; exit 1')


def _wait_for_postgres(spec):
    return {"name": "wait-for-postgres", "image": "docker.io/library/postgres:%d" % spec["postgres"]["version"],
            "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c"], "args": [WAIT_FOR_POSTGRES],
            "env": list(PG_ADDRESS),
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
            "securityContext": _restricted(999)}


def _pg_client_env(spec):
    return list(PG_ADDRESS) + [
        {"name": "PGUSER", "value": "otree"}, {"name": "PGDATABASE", "value": "otree"},
        # the password as a file from the Secret, not an environment variable
        {"name": "PGPASSWORD_FILE", "value": "/run/secrets/postgres/POSTGRES_PASSWORD"},
        {"name": "BACKUP_DIR", "value": BACKUP_DIR}]


def _pg_client_container(spec, name, script, extra_env=()):
    return {"name": name, "image": "docker.io/library/postgres:%d" % spec["postgres"]["version"],
            "imagePullPolicy": "IfNotPresent", "command": ["sh", "-ec"], "args": [script],
            "env": _pg_client_env(spec) + list(extra_env),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "securityContext": _restricted(999),
            "volumeMounts": [{"name": "backups", "mountPath": BACKUP_DIR}, {"name": "tmp", "mountPath": "/tmp"},
                             {"name": "password", "mountPath": "/run/secrets/postgres", "readOnly": True}]}


def backup_container(spec):
    return _pg_client_container(spec, "pg-dump", BACKUP_SCRIPT,
                                [{"name": "RETENTION_DAYS", "value": str(spec["backup"]["retention_days"])}])


def restore_container(spec, dump):
    return _pg_client_container(spec, "pg-restore", RESTORE_SCRIPT, [{"name": "DUMP", "value": dump}])


def _pg_client_pod(spec, container, wait=True):
    pod = {"serviceAccountName": "postgres", "automountServiceAccountToken": False, "restartPolicy": "Never",
           "securityContext": {"fsGroup": 999, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [container],
           "volumes": [{"name": "backups", "persistentVolumeClaim": {"claimName": "postgres-backups"}},
                       {"name": "tmp", "emptyDir": {}}, _password_volume()]}
    if wait:
        pod["initContainers"] = [_wait_for_postgres(spec)]
    return pod


def backup_objects(spec):
    """The backup volume and the CronJob that fills it."""
    ns, bk = spec["namespace"], spec["backup"]
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "postgres-backups", "namespace": ns, "labels": labels(spec, "postgres-backup")},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": bk["storage_size"]}}}}
    if bk.get("storage_class"):
        pvc["spec"]["storageClassName"] = bk["storage_class"]
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {
        "name": "postgres-backup", "namespace": ns, "labels": labels(spec, "postgres-backup")}, "spec": {
        "schedule": bk["schedule"], "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 2, "ttlSecondsAfterFinished": 86400, "template": {
            "metadata": {"labels": labels(spec, "postgres-backup")},
            "spec": _pg_client_pod(spec, backup_container(spec))}}}}}
    return [pvc, cron]


def restore_job(spec, dump, job_name=None):
    """A Job that restores `dump` from the backup volume (the restore playbook stops oTree first)."""
    return _job(spec, job_name or "postgres-restore", _pg_client_pod(spec, restore_container(spec, dump)))


def _job(spec, name, pod, backoff=0):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "namespace": spec["namespace"], "labels": labels(spec, "postgres-backup")}, "spec": {
        "backoffLimit": backoff, "ttlSecondsAfterFinished": 86400, "template": {
            "metadata": {"labels": labels(spec, "postgres-backup")}, "spec": pod}}}


def backup_job(spec, dump, job_name):
    """An on-demand backup: the CronJob's container (same command, same env) writing `dump`."""
    container = backup_container(spec)
    container["env"].append({"name": "DUMP", "value": dump})
    return _job(spec, job_name, _pg_client_pod(spec, container), backoff=1)


def resetdb_job(spec, job_name):
    """`otree resetdb --noinput` with the experiment's image and env (oTree must be stopped first)."""
    container = otree_container(spec, spec["image"])
    container.update(name="otree-resetdb", args=["resetdb", "--noinput"])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        container.pop(probe)
    container.pop("ports")
    pod = {"serviceAccountName": "otree", "automountServiceAccountToken": False, "restartPolicy": "Never",
           "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
           "initContainers": [_wait_for_postgres(spec)],
           "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}
    if spec["image_pull_secret"]:
        pod["imagePullSecrets"] = [{"name": PULL_SECRET_NAME}]
    job = _job(spec, job_name, pod)
    job["metadata"]["labels"] = job["spec"]["template"]["metadata"]["labels"] = labels(spec, "otree-resetdb")
    return job


def backup_reader_pod(spec, name="backup-transfer"):
    """A short-lived pod that mounts the backup volume, to copy dumps to and from the controller."""
    container = _pg_client_container(spec, "transfer", "sleep 1800", [])
    pod = _pg_client_pod(spec, container, wait=False)  # mounts the backup volume only
    pod["activeDeadlineSeconds"] = 3600  # gone within the hour even if the playbook is interrupted
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": spec["namespace"], "labels": labels(spec, "postgres-backup")}, "spec": pod}


def otree_container(spec, image):
    """The oTree container: what the runtime contract test runs for real."""

    def secret(key):
        return {"secretKeyRef": {"name": SECRET_NAME, "key": key}}
    env = [
        {"name": "DATABASE_URL", "valueFrom": secret("DATABASE_URL")},
        {"name": "OTREE_ADMIN_PASSWORD", "valueFrom": secret("OTREE_ADMIN_PASSWORD")},
        {"name": "OTREE_REST_KEY", "valueFrom": secret("OTREE_REST_KEY")},
        {"name": "OTREE_AUTH_LEVEL", "value": spec["auth_level"]},
        {"name": "FORWARDED_ALLOW_IPS", "value": "*"},  # trust X-Forwarded-Proto from the ingress: https links
    ]
    if spec["production"]:
        env.append({"name": "OTREE_PRODUCTION", "value": "1"})
    env += [{"name": k, "value": str(v)} for k, v in sorted(spec["extra_env"].items())]
    return {
        "name": "otree", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["otree"], "args": ["prodserver", str(OTREE_PORT)],
        "ports": [{"name": "http", "containerPort": OTREE_PORT, "protocol": "TCP"}],
        "env": env,
        # oTree has no health endpoint: it serves its own static files, and answers on the port
        "readinessProbe": {"httpGet": {"path": PROBE_PATH, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 20, "periodSeconds": 20,
                          "timeoutSeconds": 5, "failureThreshold": 6},
        "startupProbe": {"httpGet": {"path": PROBE_PATH, "port": "http"}, "periodSeconds": 5, "failureThreshold": 60},
        "resources": spec["resources"],
        "securityContext": _restricted(spec["run_as_user"]),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def otree_deployment_spec(spec, image, pull_secrets):
    pod = {"serviceAccountName": "otree", "automountServiceAccountToken": False,
           "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [otree_container(spec, image)], "volumes": [{"name": "tmp", "emptyDir": {}}]}
    if pull_secrets:
        pod["imagePullSecrets"] = pull_secrets
    return {"replicas": spec["replicas"],  # oTree is one process: a second replica breaks websockets and its locks
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector(spec, "otree")},
            "template": {"metadata": {"labels": labels(spec, "otree")}, "spec": pod}}


HTTPS_REDIRECT = "redirect-to-https"


def ingress_objects(spec):
    """The Ingress serving oTree over HTTPS (TLS at the ingress, the certificate from the ClusterIssuer).
    With ingress-nginx (class public or nginx) its ssl-redirect sends http:// to https://. Traefik (class
    traefik, MicroK8s 1.35) serves the HTTPS Ingress on its websecure entry point only, so http:// was a
    404: a second Ingress on the web entry point redirects through a Middleware (Traefik's CRD, installed
    by the ingress addon). ACME HTTP-01 still works: cert-manager's solver Ingress for the same host has
    the longer path, which Traefik prefers."""
    annotations = {"cert-manager.io/cluster-issuer": spec["cluster_issuer"]}
    timeout = str(spec["websocket_timeout"])
    traefik = spec["ingress_class"] not in ("public", "nginx")
    if not traefik:
        # ingress-nginx closes idle proxied connections after 60 s: oTree pages keep a websocket open
        annotations.update({"nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
                            "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
                            "nginx.ingress.kubernetes.io/ssl-redirect": "true"})
    else:
        annotations.update({"traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
                            "traefik.ingress.kubernetes.io/router.tls": "true"})
    rules = [{"host": spec["host"], "http": {"paths": [{
        "path": "/", "pathType": "Prefix", "backend": {"service": {"name": "otree", "port": {"name": "http"}}}}]}}]
    out = [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
        "name": "otree", "namespace": spec["namespace"], "labels": labels(spec, "otree"), "annotations": annotations},
        "spec": {"ingressClassName": spec["ingress_class"],
                 "tls": [{"hosts": [spec["host"]], "secretName": "otree-tls"}], "rules": rules}}]
    if traefik:
        out.append({"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {
            "name": HTTPS_REDIRECT, "namespace": spec["namespace"], "labels": labels(spec, "otree")},
            "spec": {"redirectScheme": {"scheme": "https", "permanent": True}}})
        redirect = {"traefik.ingress.kubernetes.io/router.entrypoints": "web",
                    "traefik.ingress.kubernetes.io/router.middlewares":
                        "%s-%s@kubernetescrd" % (spec["namespace"], HTTPS_REDIRECT)}
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
            "name": "otree-http", "namespace": spec["namespace"], "labels": labels(spec, "otree"),
            "annotations": redirect}, "spec": {"ingressClassName": spec["ingress_class"], "rules": rules}})
    return out


def owner_of(spec):
    """The owner label value the experiment's objects are applied and pruned with."""
    return "otree-%s" % spec["name"]


def summary(spec):
    """What a module's result says of an experiment, without secrets."""
    return {"name": spec["name"], "namespace": spec["namespace"], "state": spec["state"], "purge": spec["purge"],
            "url": "https://%s/" % spec["host"] if spec["state"] == "present" else None,
            "owner": owner_of(spec), "secret": "%s/%s" % (spec["namespace"], SECRET_NAME)}


def stored_values(secret):
    """The values an experiment's Secret (as the API returns it) holds, decoded."""
    meta = secret.get("metadata") or {}
    values = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(value).decode("utf-8")
        except (TypeError, ValueError):
            raise SpecError("existing_secrets", "%s/%s key %s is not base64" % (meta.get("namespace"), meta.get("name"),
                                                                                key))
    return values


def operations_owner(spec):
    """The owner label value of an experiment's maintenance Jobs and Pods (never pruned with it)."""
    return "otree-%s-operations" % spec["name"]


def validate_all(experiments, defaults=None):
    """Every experiment checked, alone and against the others (names, hosts and namespaces each used
    once), without rendering anything: the normalized specs, or SpecError naming the first bad field."""
    if not isinstance(defaults or {}, dict):
        raise SpecError("defaults", "must be a mapping of experiment fields")
    if not isinstance(experiments or [], list):
        raise SpecError("experiments", "must be a list of experiments")
    specs, seen = [], {"name": {}, "host": {}, "namespace": {}}
    for index, raw in enumerate(experiments or []):
        merged = _merge(defaults or {}, raw) if isinstance(raw, dict) else raw
        spec = normalize_spec(merged, index)
        if spec["name"] in seen["name"]:
            raise SpecError("experiments[%s].name" % spec["name"], "is used twice")
        for field in ("host", "namespace"):
            value = spec.get(field)
            # an entry being removed without purge touches only its own objects (its owner label)
            if spec["state"] != "present" and (field == "host" or not spec["purge"]):
                continue
            if value in seen[field]:
                raise SpecError("experiments[%s].%s" % (spec["name"], field), "%s is already used by experiment %s%s"
                                % (value, seen[field][value], "; experiments in one namespace would overwrite "
                                   "each other's objects" if field == "namespace" else ""))
            seen[field][value] = spec["name"]
        seen["name"][spec["name"]] = True
        specs.append(spec)
    return specs


def render_all(experiments, existing_secrets=None, defaults=None):
    """Every experiment: returns a list of dicts {spec, manifests, secrets, generated, owner}.
    `existing_secrets` maps experiment name -> the values its Secret holds in the cluster."""
    existing_secrets = existing_secrets or {}
    out = []
    for spec in validate_all(experiments, defaults):
        values, generated = resolve_secrets(spec, existing_secrets.get(spec["name"]))
        # state: absent renders nothing: applying an empty list with pruning in the experiment's
        # namespace removes workloads and ingress; the Namespace, the PVC and the generated Secret are
        # protected from pruning unless purge (prune_protected) is asked for.
        manifests = render(spec, values) if spec["state"] == "present" else []
        out.append({"spec": spec, "manifests": manifests, "secrets": values, "generated": generated,
                    "owner": owner_of(spec)})
    return out
