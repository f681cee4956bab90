"""Fixtures for the runtime tests (oTree, Debian's PostgreSQL, headless Chromium, all real).

oTree's runtime contract, for real:

Takes the oTree container the renderer produces (command, args, env, port, probe paths) and runs
exactly that with the pinned oTree (tests/runtime/requirements-otree.txt) on a sample project
(tests/runtime/sample_project), against Debian's PostgreSQL, with the values the rendered Secret
holds. The probes must answer; a session is created and played to the end by oTree's own browser
bots (headless Chromium, HTTP + websockets) against the running server; the results are in
Postgres; after a restart of oTree they are still there.

The one translation: the rendered DATABASE_URL names the Service `postgres:5432`, which cluster
DNS resolves; here it is the test's PostgreSQL on 127.0.0.1.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import otree_render  # noqa: E402
from tests.runtime import browser_bots  # noqa: E402
from tests.runtime.browser_bots import otree_venv  # noqa: E402,F401

SAMPLE = Path(__file__).resolve().parent / "sample_project"
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL cluster (Debian's binaries) on a free loopback port."""
    if PG_BIN is None:
        pytest.fail("Debian's postgresql is not installed: run scripts/setup-host.sh")
    base = Path(tempfile.mkdtemp(prefix="oforest-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_pg + [str(PG_BIN / "initdb"), "-D", str(base / "data"), "--auth-local=peer",
                            "--auth-host=scram-sha-256", "-U", "postgres"], check=True, capture_output=True)
    (base / "data" / "pg_hba.conf").write_text(
        "local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n")
    subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-w", "-l", str(base / "log"), "-o",
                            "-p %d -k %s -c listen_addresses=127.0.0.1" % (port, base), "start"], check=True,
                   capture_output=True)

    def psql(sql, db="postgres"):
        return subprocess.run(as_pg + ["psql", "-h", str(base), "-p", str(port), "-d", db, "-tA", "-v",
                                       "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True,
                              text=True).stdout.strip()
    yield {"port": port, "psql": psql}
    subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "stop"],
                   capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def rendered():
    spec = {"name": "runtime", "host": "runtime.experiments.example.org", "image": "example.org/lab/runtime:1.0.0",
            "auth_level": "STUDY", "production": True}
    item = otree_render.render_all([spec])[0]
    dep = next(m for m in item["manifests"] if m["kind"] == "Deployment" and m["metadata"]["name"] == "otree")
    secret = next(m for m in item["manifests"] if m["kind"] == "Secret")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    return dep["spec"]["template"]["spec"]["containers"][0], values


def container_env(container, secret_values, pg_port):
    """The environment Kubernetes would give the container."""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == otree_render.SECRET_NAME
            env[item["name"]] = secret_values[ref["key"]]
    # cluster DNS: the Service postgres:5432 is the test's PostgreSQL here
    assert "@postgres:5432/" in env["DATABASE_URL"]
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("@postgres:5432/", "@127.0.0.1:%d/" % pg_port)
    return env


class OtreeServer:
    def __init__(self, container, env, workdir, venv):
        self.container, self.env, self.workdir, self.venv = container, env, workdir, venv
        self.proc = None
        self.port = container["ports"][0]["containerPort"]

    def start(self):
        env = dict(self.env, PATH="%s/bin:/usr/bin:/bin" % self.venv, HOME=str(self.workdir))
        self.log = open(self.workdir / "otree.log", "ab")
        self.proc = subprocess.Popen(self.container["command"] + self.container["args"], cwd=str(self.workdir),
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("oTree exited: %s" % (self.workdir / "otree.log").read_text()[-3000:])
            if self.probe_http(self.container["readinessProbe"]["httpGet"]["path"]) == 200:
                return
            time.sleep(0.5)
        raise AssertionError("oTree never answered its readiness probe")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=30)

    def probe_http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=5) as r:
                return r.status
        except Exception:
            return None

    def probe_tcp(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            return True


@pytest.fixture(scope="module")
def otree_run(postgres, rendered, tmp_path_factory):
    container, values = rendered
    port = container["ports"][0]["containerPort"]
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail("port %d (the rendered containerPort) is busy on this machine" % port)
    # the database the Postgres container's POSTGRES_USER/POSTGRES_DB/POSTGRES_PASSWORD would create
    postgres["psql"]("CREATE ROLE otree LOGIN PASSWORD '%s'" % values["POSTGRES_PASSWORD"])
    postgres["psql"]("CREATE DATABASE otree OWNER otree")
    workdir = tmp_path_factory.mktemp("project")
    shutil.copytree(SAMPLE, workdir, dirs_exist_ok=True)
    server = OtreeServer(container, container_env(container, values, postgres["port"]), workdir, otree_venv())
    server.start()
    yield server, values, postgres
    server.stop()



@pytest.fixture(scope="module")
def played(otree_run, tmp_path_factory):
    """A session played to the end by oTree's own browser bots against the running server."""
    server, values, postgres = otree_run
    bots = browser_bots.play("http://127.0.0.1:%d" % server.port, values["OTREE_ADMIN_PASSWORD"],
                             values["OTREE_REST_KEY"], tmp_path_factory.mktemp("bots"), venv=server.venv,
                             project=server.workdir, timeout=180)
    assert bots.returncode == 0 and "finished in" in bots.stdout, bots.stdout + bots.stderr
    return bots


def results(postgres):
    return postgres["psql"]("SELECT count(*), sum(p.guess), max(g.total) FROM guess_player p "
                            "JOIN guess_group g ON p.group_id = g.id WHERE p.guess IS NOT NULL", db="otree")
