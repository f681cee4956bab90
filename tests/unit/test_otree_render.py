"""The oTree renderer: every bad input a user will make gets an error naming the field; the
rendered objects follow oTree's runtime contract."""
from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import otree_render as r  # noqa: E402

GOOD = {"name": "public-goods", "host": "pgg.experiments.example.org",
        "image": "registry.gitlab.example.org/lab/pgg:3f2a9c1"}


def render_one(**changes):
    spec = dict(copy.deepcopy(GOOD), **changes)
    return r.render_all([spec])[0]


def by_kind(manifests, kind, name=None):
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert found, "no %s %s" % (kind, name or "")
    return found[0]


@pytest.mark.parametrize("changes,field,text", [
    ({"name": "Public_Goods"}, "name", "not a valid experiment name"),
    ({"name": "x" * 41}, "name", "1-40 lowercase"),
    ({"name": ""}, "name", "not a valid experiment name"),
    ({"host": "pgg"}, "host", "not a fully qualified domain name"),
    ({"host": "https://pgg.example.org"}, "host", "not a fully qualified domain name"),
    ({"host": "PGG.Example.org"}, "host", "not a fully qualified domain name"),
    ({"image": "registry.gitlab.example.org/lab/pgg"}, "image", "has no tag"),
    ({"image": "registry.gitlab.example.org/lab/pgg:latest"}, "image", "':latest'"),
    ({"image": "registry.example.org:5000/lab/pgg"}, "image", "has no tag"),
    ({"image": "Not An Image"}, "image", "not a valid image reference"),
    ({"admin_password": "short"}, "admin_password", "too short"),
    ({"rest_key": "abc"}, "rest_key", "too short"),
    ({"auth_level": "PUBLIC"}, "auth_level", "STUDY or DEMO"),
    ({"postgres": {"version": "latest"}}, "postgres.version", "major version"),
    ({"postgres": {"version": 9}}, "postgres.version", "major version"),
    ({"postgres": {"storage_size": "5 GB"}}, "postgres.storage_size", "quantity"),
    ({"resources": {"limits": {"memory": "lots"}}}, "resources.limits.memory", "quantity"),
    ({"extra_env": {"OTREE_IN_MEMORY": "1"}}, "extra_env.OTREE_IN_MEMORY", "ignore DATABASE_URL"),
    ({"extra_env": {"DATABASE_URL": "sqlite://"}}, "extra_env.DATABASE_URL", "set by the collection"),
    ({"ingress_class": "haproxy"}, "ingress_class", "public"),
    ({"state": "gone"}, "state", "'present' or 'absent'"),
    ({"image_pull_secret": {"registry": "r.example.org"}}, "image_pull_secret", "username, password"),
    ({"colour": "red"}, "experiments[public-goods]", "unknown field(s) colour"),
    ({"backup": {"schedule": "daily"}}, "backup.schedule", "cron schedule"),
    ({"backup": {"retention_days": 0}}, "backup.retention_days", "at least 1"),
    ({"backup": {"storage_size": "lots"}}, "backup.storage_size", "quantity"),
    ({"replicas": 2}, "replicas", "a second replica breaks"),
    ({"replicas": True}, "replicas", "must be 1 (running) or 0"),
    # nested fields of the wrong type, unknown nested fields, zero sizes, booleans taken for numbers
    ({"postgres": "version=17"}, "postgres", "must be a mapping"),
    ({"backup": ["daily"]}, "backup", "must be a mapping"),
    ({"resources": "small"}, "resources", "must be a mapping"),
    ({"postgres": {"resources": "small"}}, "postgres.resources", "must be a mapping"),
    ({"extra_env": "A=1"}, "extra_env", "must be a mapping"),
    ({"postgres": {"verison": 17}}, "postgres", "unknown field(s) verison"),
    ({"backup": {"keep_days": 3}}, "backup", "unknown field(s) keep_days"),
    ({"resources": {"request": {"cpu": "1"}}}, "resources", "unknown field(s) request"),
    ({"postgres": {"storage_size": "0Gi"}}, "postgres.storage_size", "more than zero"),
    ({"backup": {"storage_size": "0"}}, "backup.storage_size", "more than zero"),
    ({"resources": {"limits": {"memory": "0Mi"}}}, "resources.limits.memory", "more than zero"),
    ({"run_as_user": True}, "run_as_user", "numeric user id"),
    ({"run_as_user": "10001"}, "run_as_user", "numeric user id"),
    ({"websocket_timeout": "3600"}, "websocket_timeout", "whole number of seconds"),
    ({"websocket_timeout": True}, "websocket_timeout", "whole number of seconds"),
    ({"backup": {"retention_days": True}}, "backup.retention_days", "at least 1"),
    ({"namespace": "kube-system"}, "namespace", "reserved"),
    ({"namespace": "default"}, "namespace", "reserved"),
    ({"namespace": "ingress"}, "namespace", "reserved"),
    ({"namespace": "cert-manager"}, "namespace", "reserved"),
    ({"namespace": "Otree"}, "namespace", "not a valid namespace name"),
])
def test_bad_input_names_the_field(changes, field, text):
    with pytest.raises(r.SpecError) as e:
        render_one(**changes)
    assert e.value.field.endswith(field), e.value.field
    assert text in str(e.value)


def test_duplicate_names_and_hosts_are_refused():
    with pytest.raises(r.SpecError, match="used twice"):
        r.render_all([GOOD, GOOD])
    other = dict(GOOD, name="trust")
    with pytest.raises(r.SpecError, match="already used by experiment public-goods"):
        r.render_all([GOOD, other])


def test_two_experiments_in_one_namespace_are_refused():
    """They would overwrite each other's Deployments, Ingress and Secret."""
    other = dict(GOOD, name="trust", host="trust.example.org", namespace="otree-public-goods")
    with pytest.raises(r.SpecError) as e:
        r.render_all([GOOD, other])
    assert e.value.field == "experiments[trust].namespace"
    assert "otree-public-goods is already used by experiment public-goods" in str(e.value)


@pytest.mark.parametrize("size", ["512Ki", "1.5Gi", "750M", "1"])
def test_every_quantity_form_is_accepted(size):
    render_one(postgres={"storage_size": size}, resources={"limits": {"memory": size}})


def test_an_entry_in_a_reserved_namespace_can_still_be_taken_down():
    """Removal without purge touches only the entry's own objects; purge would delete the namespace."""
    r.validate_all([{"name": "old", "namespace": "default", "state": "absent", "postgres": "junk"}])
    with pytest.raises(r.SpecError, match="reserved"):
        r.validate_all([{"name": "old", "namespace": "default", "state": "absent", "purge": True}])


def test_validate_all_checks_every_entry_without_rendering():
    specs = r.validate_all([GOOD, {"name": "old", "state": "absent"}], {"ingress_class": "traefik"})
    assert [s["namespace"] for s in specs] == ["otree-public-goods", "otree-old"]
    assert specs[0]["ingress_class"] == "traefik"
    with pytest.raises(r.SpecError) as e:
        r.validate_all([GOOD, dict(GOOD, name="b", host="b.example.org", postgres="version=17")])
    assert e.value.field == "experiments[b].postgres"


@pytest.mark.parametrize("image", [
    "registry.gitlab.example.org/lab/pgg:20241201",   # a numeric tag (a pipeline IID, an all-digit short SHA)
    "registry.example.org:5000/lab/pgg:1",            # a registry port and a numeric tag
    "localhost:5000/pgg:v1",
    "registry.gitlab.example.org/lab/pgg@sha256:" + "b" * 64,
])
def test_pinned_images_are_accepted(image):
    dep = by_kind(render_one(image=image)["manifests"], "Deployment", "otree")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_objects_and_order():
    m = render_one()["manifests"]
    assert [o["kind"] for o in m][:2] == ["Namespace", "Secret"]
    kinds = sorted(o["kind"] for o in m)
    assert kinds == sorted(["Namespace", "Secret", "ServiceAccount", "ServiceAccount", "PersistentVolumeClaim",
                            "Deployment", "Service", "NetworkPolicy", "NetworkPolicy", "Deployment", "Service",
                            "Ingress", "PersistentVolumeClaim", "CronJob"])
    assert {o["metadata"].get("namespace") for o in m if o["kind"] != "Namespace"} == {"otree-public-goods"}
    ns = by_kind(m, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_otree_runtime_contract():
    m = render_one(production=True, auth_level="STUDY")["manifests"]
    dep = by_kind(m, "Deployment", "otree")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] + c["args"] == ["otree", "prodserver", "8000"]
    env = {e["name"]: e for e in c["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "otree-secrets", "key": "DATABASE_URL"}
    assert env["OTREE_PRODUCTION"]["value"] == "1" and env["OTREE_AUTH_LEVEL"]["value"] == "STUDY"
    assert env["FORWARDED_ALLOW_IPS"]["value"] == "*"
    assert "OTREE_IN_MEMORY" not in env
    assert c["readinessProbe"]["httpGet"]["path"] == "/static/favicon.ico"
    assert c["livenessProbe"]["tcpSocket"]["port"] == "http"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]


def test_secret_holds_every_key_and_database_url_matches_password():
    item = render_one()
    secret = by_kind(item["manifests"], "Secret", "otree-secrets")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == set(r.SECRET_KEYS)
    assert data["DATABASE_URL"] == "postgresql://otree:%s@postgres:5432/otree" % data["POSTGRES_PASSWORD"]
    assert len(data["OTREE_ADMIN_PASSWORD"]) >= 32
    assert secret["metadata"]["annotations"][r.GENERATED_ANNOTATION] == "true"
    assert sorted(item["generated"]) == ["OTREE_ADMIN_PASSWORD", "OTREE_REST_KEY", "POSTGRES_PASSWORD"]


def test_secrets_are_kept_never_regenerated():
    first = render_one()["secrets"]
    existing = {"public-goods": {k: first[k] for k in r.SECRET_KEYS}}
    again = r.render_all([dict(GOOD)], existing)[0]
    assert again["secrets"] == first and again["generated"] == []
    given = r.render_all([dict(GOOD, admin_password="a-given-password-123")], existing)[0]
    assert given["secrets"]["OTREE_ADMIN_PASSWORD"] == "a-given-password-123"
    assert given["secrets"]["POSTGRES_PASSWORD"] == first["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("version,mount,pgdata", [
    (16, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
    (17, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
    (18, "/var/lib/postgresql", "/var/lib/postgresql/18/docker"),
])
def test_postgres_major_pinned_and_data_path(version, mount, pgdata):
    m = render_one(postgres={"version": version})["manifests"]
    c = by_kind(m, "Deployment", "postgres")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "docker.io/library/postgres:%d" % version
    assert {"name": "data", "mountPath": mount} in c["volumeMounts"]
    assert {"name": "PGDATA", "value": pgdata} in c["env"]


def test_network_policy_admits_only_this_experiments_otree():
    np = by_kind(render_one()["manifests"], "NetworkPolicy", "postgres-only-from-otree")
    assert np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "postgres"
    peer = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer == {"app.kubernetes.io/name": "otree", "app.kubernetes.io/instance": "public-goods"}


@pytest.mark.parametrize("klass,annotation", [
    ("public", "nginx.ingress.kubernetes.io/proxy-read-timeout"),
    ("traefik", "traefik.ingress.kubernetes.io/router.tls"),
])
def test_ingress_tls_issuer_and_websocket_settings(klass, annotation):
    ing = by_kind(render_one(ingress_class=klass, cluster_issuer="letsencrypt-staging")["manifests"], "Ingress")
    assert ing["spec"]["ingressClassName"] == klass
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-staging"
    assert annotation in ing["metadata"]["annotations"]
    assert ing["spec"]["tls"][0]["hosts"] == ["pgg.experiments.example.org"]


def test_traefik_redirects_http_to_https_and_nginx_needs_no_extra_objects():
    m = render_one(ingress_class="traefik")["manifests"]
    mw = by_kind(m, "Middleware", "redirect-to-https")
    assert mw["apiVersion"] == "traefik.io/v1alpha1"
    assert mw["spec"] == {"redirectScheme": {"scheme": "https", "permanent": True}}
    http = by_kind(m, "Ingress", "otree-http")
    assert http["metadata"]["annotations"] == {
        "traefik.ingress.kubernetes.io/router.entrypoints": "web",
        "traefik.ingress.kubernetes.io/router.middlewares": "otree-public-goods-redirect-to-https@kubernetescrd"}
    assert "tls" not in http["spec"] and http["spec"]["rules"] == by_kind(m, "Ingress", "otree")["spec"]["rules"]
    assert by_kind(m, "Ingress", "otree")["metadata"]["annotations"][
        "traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    nginx = render_one(ingress_class="public")["manifests"]
    assert [o["metadata"]["name"] for o in nginx if o["kind"] in ("Ingress", "Middleware")] == ["otree"]


def test_pull_secret_for_the_gitlab_registry():
    m = render_one(image_pull_secret={"registry": "registry.gitlab.example.org", "username": "deploy-token-1",
                                      "password": "gldt-secret-value"})["manifests"]
    ps = by_kind(m, "Secret", "registry-credentials")
    assert ps["type"] == "kubernetes.io/dockerconfigjson"
    pod = by_kind(m, "Deployment", "otree")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_absent_renders_nothing_and_needs_only_the_name():
    item = r.render_all([{"name": "public-goods", "state": "absent"}])[0]
    assert item["manifests"] == [] and item["spec"]["namespace"] == "otree-public-goods"
    assert item["owner"] == "otree-public-goods"


def test_defaults_apply_to_every_experiment():
    items = r.render_all([GOOD, dict(GOOD, name="trust", host="trust.example.org", ingress_class="nginx")],
                         defaults={"ingress_class": "traefik"})
    assert [by_kind(i["manifests"], "Ingress")["spec"]["ingressClassName"] for i in items] == ["traefik", "nginx"]


def test_backup_cronjob_dumps_with_the_servers_major_and_keeps_its_volume():
    m = render_one(postgres={"version": 17}, backup={"schedule": "0 2 * * *", "retention_days": 7})["manifests"]
    cron = by_kind(m, "CronJob", "postgres-backup")
    assert cron["spec"]["schedule"] == "0 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "docker.io/library/postgres:17"
    assert "pg_dump --format=custom" in c["args"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["RETENTION_DAYS"]["value"] == "7" and env["PGHOST"]["value"] == "postgres"
    assert env["PGPASSWORD_FILE"]["value"] == "/run/secrets/postgres/POSTGRES_PASSWORD"
    assert "PGPASSWORD" not in env  # not in the environment: read from the mounted Secret
    assert {"key": "POSTGRES_PASSWORD", "path": "POSTGRES_PASSWORD"} in pod["volumes"][-1]["secret"]["items"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "postgres-backups"
    assert by_kind(m, "PersistentVolumeClaim", "postgres-backups")
    peers = by_kind(m, "NetworkPolicy", "postgres-only-from-otree")["spec"]["ingress"][0]["from"]
    assert {"app.kubernetes.io/name": "postgres-backup", "app.kubernetes.io/instance": "public-goods"} in [
        p["podSelector"]["matchLabels"] for p in peers]


def test_backup_can_be_disabled():
    kinds = [o["kind"] for o in render_one(backup={"enabled": False})["manifests"]]
    assert "CronJob" not in kinds and kinds.count("PersistentVolumeClaim") == 1


def test_restore_job_names_the_dump():
    spec = r.normalize_spec(dict(GOOD))
    job = r.restore_job(spec, "otree-20261127T031700Z.dump")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DUMP", "value": "otree-20261127T031700Z.dump"} in c["env"]
    assert "pg_restore --clean --if-exists --no-owner --single-transaction" in c["args"][0]
    assert job["spec"]["backoffLimit"] == 0


def test_replicas_zero_stops_otree_and_keeps_postgres():
    m = render_one(replicas=0)["manifests"]
    assert by_kind(m, "Deployment", "otree")["spec"]["replicas"] == 0
    assert by_kind(m, "Deployment", "postgres")["spec"]["replicas"] == 1
    assert by_kind(m, "PersistentVolumeClaim", "postgres-data")


def test_backup_job_runs_the_cronjobs_container_with_a_named_dump():
    spec = r.normalize_spec(dict(GOOD))
    cron = r.backup_objects(spec)[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    job = r.backup_job(spec, "otree-20261127T101500Z-manual.dump", "backup-20261127t101500z")
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert (c["image"], c["command"], c["args"]) == (cron["containers"][0]["image"], cron["containers"][0]["command"],
                                                      cron["containers"][0]["args"])
    assert c["env"] == cron["containers"][0]["env"] + [{"name": "DUMP", "value": "otree-20261127T101500Z-manual.dump"}]
    assert pod["volumes"] == cron["volumes"] and pod["restartPolicy"] == "Never"
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == ("backup-20261127t101500z", "otree-public-goods")
    assert job["metadata"]["labels"][r.EXPERIMENT_LABEL] == "public-goods"
    assert '${DUMP:-otree-' in c["args"][0]


def test_resetdb_job_uses_the_experiments_image_and_env_without_probes():
    spec = r.normalize_spec(dict(GOOD, extra_env={"OTREE_SOMETHING": "x"}))
    otree = r.otree_container(spec, spec["image"])
    job = r.resetdb_job(spec, "resetdb-1")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] + c["args"] == ["otree", "resetdb", "--noinput"]
    assert c["image"] == GOOD["image"] and c["env"] == otree["env"]
    assert c["securityContext"] == otree["securityContext"]
    assert not {"readinessProbe", "livenessProbe", "startupProbe", "ports"} & set(c)
    assert job["spec"]["backoffLimit"] == 0  # never run twice on its own
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "otree"


def test_transfer_pod_mounts_the_backup_volume_and_ends_itself():
    spec = r.normalize_spec(dict(GOOD))
    pod = r.backup_reader_pod(spec)
    assert pod["kind"] == "Pod" and pod["spec"]["activeDeadlineSeconds"] <= 3600
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "postgres-backups"}} in pod["spec"]["volumes"]
    assert pod["spec"]["containers"][0]["args"] == ["sleep 1800"]


def _admitted_by(policy, pod_labels):
    """NetworkPolicy ingress semantics for peers in the policy's own namespace (podSelector only)."""
    for rule in policy["spec"]["ingress"]:
        for peer in rule.get("from", []):
            wanted = peer["podSelector"].get("matchLabels", {})
            if all(pod_labels.get(k) == v for k, v in wanted.items()):
                return True
    return False


def test_every_pod_that_talks_to_postgres_is_admitted_and_no_other():
    """Found on the real node (kube-router enforces NetworkPolicy): the resetdb Job's pod was not
    admitted, so `otree resetdb` could not reach Postgres and resetdb.yml failed."""
    spec = r.normalize_spec(dict(GOOD))
    manifests = render_one()["manifests"]
    policy = by_kind(manifests, "NetworkPolicy", "postgres-only-from-otree")
    cron = by_kind(manifests, "CronJob", "postgres-backup")
    talkers = {
        "otree": by_kind(manifests, "Deployment", "otree")["spec"]["template"],
        "backup (CronJob)": cron["spec"]["jobTemplate"]["spec"]["template"],
        "backup (on demand)": r.backup_job(spec, "x.dump", "backup-now")["spec"]["template"],
        "restore": r.restore_job(spec, "x.dump")["spec"]["template"],
        "resetdb": r.resetdb_job(spec, "resetdb-now")["spec"]["template"],
    }
    refused = [name for name, template in talkers.items()
               if not _admitted_by(policy, template["metadata"]["labels"])]
    assert refused == []
    # the node refuses a new pod's first connection for a moment: the Job pods wait for Postgres first
    assert [name for name, t in talkers.items() if name != "otree"
            and [c["name"] for c in t["spec"].get("initContainers", [])] != ["wait-for-postgres"]] == []
    other_experiment = r.labels(dict(spec, name="other"), "otree")
    assert not _admitted_by(policy, other_experiment)
    assert not _admitted_by(policy, {"app.kubernetes.io/instance": spec["name"]})
