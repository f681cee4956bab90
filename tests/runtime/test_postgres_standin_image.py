"""The STAND-IN of docker.io/library/postgres:16 (tests/standins/postgres/) held to the official image's
documented contract (Docker Hub "postgres"; docker-library/docs postgres/content.md, sections
"Environment Variables", "Docker Secrets", "Arbitrary --user Notes"), which our Postgres Deployment
relies on: POSTGRES_PASSWORD_FILE, POSTGRES_USER, POSTGRES_DB, PGDATA in a subdirectory of the
volume, run as uid 999, initialised only on an empty volume, password authentication over TCP.
The image runs under podman, as the node's containerd runs it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-9"

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")


@pytest.fixture(scope="module")
def image():
    out = subprocess.run([str(ROOT / "tests" / "standins" / "postgres" / "build.sh")], capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


class Postgres:
    def __init__(self, image, volume, secret, env):
        self.name = "oforest-pg-" + uuid.uuid4().hex[:8]
        self.cmd = ["podman", "run", "-d", "--name", self.name, "--user", "999:999", "--network", "none",
                    "-v", "%s:/var/lib/postgresql/data" % volume, "-v", "%s:/run/secrets/postgres:ro" % secret]
        for k, v in env.items():
            self.cmd += ["-e", "%s=%s" % (k, v)]
        self.cmd.append(image)

    def start(self):
        subprocess.run(self.cmd, check=True, capture_output=True)
        return self

    def wait(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.exec("pg_isready", "-U", "otree", "-d", "otree", "-h", "127.0.0.1").returncode == 0:
                return True
            if not self.running():
                return False
            time.sleep(0.5)
        return False

    def running(self):
        out = subprocess.run(["podman", "inspect", "-f", "{{.State.Running}}", self.name], capture_output=True,
                             text=True)
        return out.stdout.strip() == "true"

    def exit_code(self):
        subprocess.run(["podman", "wait", self.name], capture_output=True, timeout=60)
        out = subprocess.run(["podman", "inspect", "-f", "{{.State.ExitCode}}", self.name], capture_output=True,
                             text=True)
        return int(out.stdout.strip())

    def exec(self, *cmd, env=None):
        extra = []
        for k, v in (env or {}).items():
            extra += ["-e", "%s=%s" % (k, v)]
        return subprocess.run(["podman", "exec"] + extra + [self.name] + list(cmd), capture_output=True, text=True)

    def psql(self, sql, password=PASSWORD, user="otree", db="otree"):
        return self.exec("psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-tAc", sql, env={"PGPASSWORD": password})

    def logs(self):
        out = subprocess.run(["podman", "logs", self.name], capture_output=True, text=True)
        return out.stdout + out.stderr

    def remove(self):
        subprocess.run(["podman", "rm", "-f", "-t", "5", self.name], capture_output=True)


@pytest.fixture
def volumes(tmp_path):
    data, secret = tmp_path / "data", tmp_path / "secret"
    data.mkdir()
    data.chmod(0o777)   # a fresh hostpath volume (the provisioner's helper makes it 0777)
    secret.mkdir()
    (secret / "POSTGRES_PASSWORD").write_text(PASSWORD)
    yield data, secret
    subprocess.run(["rm", "-rf", str(data)])


ENV = {"POSTGRES_USER": "otree", "POSTGRES_DB": "otree", "PGDATA": "/var/lib/postgresql/data/pgdata",
       "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres/POSTGRES_PASSWORD"}


def test_initialises_an_empty_volume_and_keeps_it_on_restart(image, volumes):
    data, secret = volumes
    pg = Postgres(image, data, secret, ENV).start()
    try:
        assert pg.wait(), pg.logs()
        assert "init process complete" in pg.logs()
        assert pg.psql("select current_user, current_database()").stdout.strip() == "otree|otree"
        assert pg.psql("create table kept (v text); insert into kept values ('row')").returncode == 0
        refused = pg.psql("select 1", password="wrong-password-1")
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr
        assert pg.exec("sh", "-c", "id -u; stat -c %u /var/lib/postgresql/data/pgdata").stdout.split() == ["999",
                                                                                                          "999"]
    finally:
        pg.remove()
    again = Postgres(image, data, secret, ENV).start()
    try:
        assert again.wait(), again.logs()
        assert "init process complete" not in again.logs()
        assert again.psql("select v from kept").stdout.strip() == "row"
    finally:
        again.remove()


def test_refuses_to_initialise_without_a_password(image, volumes):
    data, secret = volumes
    env = dict(ENV)
    del env["POSTGRES_PASSWORD_FILE"]
    pg = Postgres(image, data, secret, env).start()
    try:
        assert pg.exit_code() != 0
        assert "superuser password is not specified" in pg.logs()
        assert not (data / "pgdata" / "PG_VERSION").exists()
    finally:
        pg.remove()
