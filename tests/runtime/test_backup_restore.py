"""Backups for real: the rendered CronJob's container (same command, same env) dumps the database
the bots filled; the database is dropped; the rendered restore Job's container brings it back; every
table has the same rows and the same checksum. oTree then serves the restored data after a restart.

Translations, as for the oTree container: the Service name `postgres:5432` is the test's
PostgreSQL on 127.0.0.1, the backup volume mounted at /backups and the Secret file mounted at
/run/secrets/postgres are temporary folders, and the
PostgreSQL client tools are Debian's (the pods use the official postgres image of the same major).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.runtime.conftest import PG_BIN, container_env, otree_render, results


def run_container(container, secret_values, pg_port, backup_dir):
    """Run a rendered Postgres-client container's command with the env Kubernetes would give it."""
    env = {"PATH": "%s:/usr/bin:/bin" % PG_BIN, "HOME": str(backup_dir)}
    for item in container["env"]:
        env[item["name"]] = item["value"]  # no secret in the environment: the password is a file
    assert env["PGHOST"] == "postgres" and env["BACKUP_DIR"] == otree_render.BACKUP_DIR
    secret_dir = backup_dir.parent / (backup_dir.name + "-secret")
    secret_dir.mkdir(exist_ok=True)
    (secret_dir / "POSTGRES_PASSWORD").write_text(secret_values["POSTGRES_PASSWORD"])
    # Service DNS, the backup volume and the mounted Secret file
    env.update(PGHOST="127.0.0.1", PGPORT=str(pg_port), BACKUP_DIR=str(backup_dir),
               PGPASSWORD_FILE=str(secret_dir / "POSTGRES_PASSWORD"))
    return subprocess.run(container["command"] + container["args"], env=env, capture_output=True, text=True,
                          timeout=120)


def table_fingerprints(postgres):
    """Row count and checksum of every table in the oTree database."""
    tables = postgres["psql"]("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                              db="otree").split()
    assert len(tables) >= 5, tables
    out = {}
    for t in tables:
        out[t] = postgres["psql"]("SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY "
                                  "x::text)), '-') FROM \"%s\" x" % t, db="otree")
    return out


@pytest.fixture(scope="module")
def spec():
    return otree_render.normalize_spec({"name": "runtime", "host": "runtime.experiments.example.org",
                                        "image": "example.org/lab/runtime:1.0.0",
                                        "backup": {"retention_days": 14}})


def test_backup_drop_restore_gives_back_every_row(played, otree_run, spec, tmp_path):
    server, values, postgres = otree_run
    assert results(postgres) == "2|30|30"
    before = table_fingerprints(postgres)

    dump = run_container(otree_render.backup_container(spec), values, postgres["port"], tmp_path)
    assert dump.returncode == 0, dump.stdout + dump.stderr
    dumps = sorted(p.name for p in tmp_path.glob("otree-*.dump"))
    assert len(dumps) == 1 and (tmp_path / (dumps[0] + ".sha256")).exists(), os.listdir(tmp_path)
    assert not list(tmp_path.glob("*.part"))

    server.stop()  # the restore playbook scales oTree to 0 first
    postgres["psql"]("DROP DATABASE otree")
    postgres["psql"]("CREATE DATABASE otree OWNER otree")
    assert postgres["psql"]("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db="otree") == "0"

    restore = run_container(otree_render.restore_container(spec, dumps[0]), values, postgres["port"], tmp_path)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert table_fingerprints(postgres) == before

    server.start()
    assert results(postgres) == "2|30|30"
    assert server.probe_http("/static/favicon.ico") == 200


def test_restore_refuses_a_damaged_dump(played, otree_run, spec, tmp_path):
    server, values, postgres = otree_run
    before = table_fingerprints(postgres)
    dump = run_container(otree_render.backup_container(spec), values, postgres["port"], tmp_path)
    assert dump.returncode == 0, dump.stderr
    name = next(tmp_path.glob("otree-*.dump")).name
    with open(tmp_path / name, "r+b") as f:  # flip a byte in the middle
        f.seek(os.path.getsize(tmp_path / name) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    restore = run_container(otree_render.restore_container(spec, name), values, postgres["port"], tmp_path)
    assert restore.returncode != 0 and "FAILED" in restore.stdout + restore.stderr
    assert table_fingerprints(postgres) == before  # nothing was touched


def test_retention_removes_only_old_dumps(otree_run, spec, tmp_path):
    server, values, postgres = otree_run
    old = tmp_path / "otree-20200101T000000Z.dump"
    old.write_bytes(b"old")
    os.utime(old, (1577836800, 1577836800))
    keep = tmp_path / "notes.txt"
    keep.write_text("not a dump")
    dump = run_container(otree_render.backup_container(spec), values, postgres["port"], tmp_path)
    assert dump.returncode == 0, dump.stderr
    assert not old.exists() and keep.exists()
    assert len(list(tmp_path.glob("otree-*.dump"))) == 1


def test_resetdb_flow_backs_up_empties_and_can_be_undone(played, otree_run, spec, tmp_path):
    """playbooks/resetdb.yml's steps with the rendered containers: backup Job, oTree stopped, the resetdb
    Job's command (`otree resetdb --noinput`, the experiment's image and env), oTree started again; then
    the pre-reset dump restores every row."""
    server, values, postgres = otree_run
    assert results(postgres) == "2|30|30"
    before = table_fingerprints(postgres)

    job = otree_render.backup_job(spec, "otree-20261127T101500Z-before-resetdb.dump", "backup-x")
    container = job["spec"]["template"]["spec"]["containers"][0]
    cron = otree_render.backup_objects(spec)[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert (container["command"], container["args"]) == (cron["command"], cron["args"])  # the CronJob's command
    dump = run_container(container, values, postgres["port"], tmp_path)
    assert dump.returncode == 0, dump.stderr
    assert (tmp_path / "otree-20261127T101500Z-before-resetdb.dump.sha256").exists()

    server.stop()
    reset = otree_render.resetdb_job(dict(spec, image="example.org/lab/runtime:1.0.0"), "resetdb-x")
    rc = reset["spec"]["template"]["spec"]["containers"][0]
    assert rc["command"] + rc["args"] == ["otree", "resetdb", "--noinput"]
    env = dict(container_env(rc, values, postgres["port"]), PATH="%s/bin:/usr/bin:/bin" % server.venv,
               HOME=str(server.workdir))
    out = subprocess.run(rc["command"] + rc["args"], cwd=str(server.workdir), env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Created new tables" in out.stdout + out.stderr
    assert postgres["psql"]("SELECT count(*) FROM otree_session", db="otree") == "0"  # recreated, empty
    assert results(postgres) == "0||"
    server.start()
    assert server.probe_http("/static/favicon.ico") == 200

    server.stop()
    restore = run_container(otree_render.restore_container(spec, "otree-20261127T101500Z-before-resetdb.dump"),
                            values, postgres["port"], tmp_path)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert table_fingerprints(postgres) == before
    server.start()
    assert results(postgres) == "2|30|30"
