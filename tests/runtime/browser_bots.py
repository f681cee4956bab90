"""oTree's own browser bots in headless Chromium: the sample session (tests/runtime/sample_project,
app `guess`, two players and a wait page) played to the end against a running oTree server.

Used by the runtime tests (a local server, plain HTTP) and by molecule/site (the experiment on the
real node, over HTTPS through Traefik):

    python -m tests.runtime.browser_bots --kubeconfig K --namespace otree-site-pgg \
        --url https://pgg.experiments.example.org --resolve pgg.experiments.example.org:10.88.0.5 \
        --cacert pebble-root.pem

The launcher (`otree browser_bots`) creates the session through the server's REST view and waits on
a websocket (wss:// behind an ingress) until every bot has finished; each participant's page runs
in Chromium and its wait pages use websockets too. With --cacert, both Chromium (an NSS database of
its own holding only that root) and the launcher's HTTP client (requests) trust only that CA: a
chain that does not verify fails the run. With --resolve, the host is sent to the given address,
as a lab's DNS record would (an /etc/hosts of the launcher's own mount namespace).
The admin password and REST key come from the experiment's Secret `otree-secrets`; they are passed
in the launcher's environment only, never on a command line or in the output.
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "runtime" / "sample_project"

# With --resolve the launcher runs in a mount namespace of its own whose /etc/hosts names the host (the
# machine's file is untouched): its HTTP client, its websocket client (ws4py connects by name, past
# Python's getaddrinfo) and Chromium all resolve through it, as they would through a lab's DNS record.
PINNED = '''mount --bind "$OFOREST_HOSTS" /etc/hosts && exec "$@"'''


def otree_venv():
    out = subprocess.run([str(ROOT / "scripts" / "aux-venv.sh"), "tests/runtime/requirements-otree.txt"],
                         capture_output=True, text=True, check=True, cwd=str(ROOT))
    return Path(out.stdout.strip().splitlines()[-1])


def chromium_wrapper(tmp: Path, extra_flags=()):
    """oTree launches one browser with a URL per participant; headless Chromium takes one target per
    process, so the wrapper starts one per URL and stops them when oTree's launcher stops it."""
    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("Debian's chromium is not installed: run scripts/setup-host.sh")
    flags = " ".join("'%s'" % f for f in extra_flags)
    wrapper = tmp / "chromium-headless"
    wrapper.write_text("""#!/bin/bash
flags=(); urls=()
for a in "$@"; do case "$a" in --remote-debugging-port=*) ;; --*) flags+=("$a");; *) urls+=("$a");; esac; done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; exit 0' TERM INT
i=0
for u in "${urls[@]}"; do
  %s --no-sandbox --disable-dev-shm-usage --disable-background-networking --disable-component-update \\
     --no-first-run --user-data-dir=%s/profile-$i --remote-debugging-port=$((9300 + i)) %s "${flags[@]}" "$u" \\
     >/dev/null 2>&1 &
  pids+=($!); i=$((i + 1))
done
wait
""" % (chromium, tmp, flags))
    wrapper.chmod(0o755)
    return wrapper


def trust_only(home: Path, cacert: Path):
    """An NSS database (Chromium's certificate store on Linux, $HOME/.pki/nssdb) holding one root."""
    if not shutil.which("certutil"):
        raise RuntimeError("certutil (Debian's libnss3-tools) is not installed: run scripts/setup-host.sh")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", "sql:%s" % db, "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", "sql:%s" % db, "-n", "test-root", "-t", "C,,", "-i", str(cacert)],
                   check=True, capture_output=True)


def play(server_url, admin_password, rest_key, tmp: Path, venv: Path = None, project: Path = SAMPLE,
         participants=2, resolve=None, cacert=None, timeout=240):
    """Run `otree browser_bots guess N --server-url URL`; returns the CompletedProcess."""
    venv = venv or otree_venv()
    tmp.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "%s/bin:/usr/bin:/bin" % venv, "HOME": str(tmp),
           "OTREE_REST_KEY": rest_key, "OTREE_ADMIN_PASSWORD": admin_password,
           "BROWSER_BOTS_USE_HEADLESS": "1",
           "DATABASE_URL": "sqlite:///%s" % (tmp / "client.sqlite3")}  # the launcher's own, unused
    launcher = [str(venv / "bin" / "otree")]
    if resolve:
        host, addr = resolve.split(":", 1)
        hosts = tmp / "hosts"
        hosts.write_text(Path("/etc/hosts").read_text() + "\n%s %s\n" % (addr, host))
        env["OFOREST_HOSTS"] = str(hosts)
        unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
        launcher = unshare + ["sh", "-c", PINNED, "sh"] + launcher
    if cacert:
        trust_only(tmp, Path(cacert))
        env["REQUESTS_CA_BUNDLE"] = str(cacert)
    env["OFOREST_BROWSER_COMMAND"] = str(chromium_wrapper(tmp))
    argv = ["browser_bots", "guess", str(participants), "--server-url", server_url]
    # The launcher's own session: whatever it leaves running (a browser it did not stop because it
    # failed) is ended with it. Output to a file: a pipe would stay open as long as any browser runs.
    log = tmp / "launcher.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(launcher + argv, cwd=str(project), env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = -signal.SIGKILL
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return subprocess.CompletedProcess(argv, rc, log.read_text(), "")


def admin_login(server_url, password, resolve=None, cacert=None):
    """Log in to oTree's admin pages (its /login form, with the CSRF token the form carries) with a
    wrong password, then with the right one. Returns (admin page status before logging in, wrong
    password let in, right password let in)."""
    import re
    import socket

    import requests

    if resolve:
        host, addr = resolve.split(":", 1)
        real = socket.getaddrinfo
        socket.getaddrinfo = lambda name, *a, **kw: real(addr if name == host else name, *a, **kw)
    verify = cacert or True

    def attempt(pw):
        with requests.Session() as web:
            form = web.get(server_url + "/login", verify=verify, timeout=20)
            token = re.search(r'name="csrftoken" value="([0-9]+)"', form.text).group(1)
            web.post(server_url + "/login", data={"username": "admin", "password": pw, "csrftoken": token},
                     verify=verify, timeout=20)
            sessions = web.get(server_url + "/sessions", verify=verify, timeout=20, allow_redirects=False)
            return sessions.status_code == 200

    before = requests.get(server_url + "/sessions", verify=verify, timeout=20, allow_redirects=False)
    return before.status_code, attempt(password + "-wrong"), attempt(password)


def _secret_values(kubeconfig, namespace):
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    data = api.read_namespaced_secret("otree-secrets", namespace).data
    return (base64.b64decode(data["OTREE_ADMIN_PASSWORD"]).decode(), base64.b64decode(data["OTREE_REST_KEY"]).decode())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", required=True, help="the experiment's namespace (its Secret otree-secrets)")
    p.add_argument("--url", required=True, help="the experiment's root URL")
    p.add_argument("--resolve", help="HOST:ADDRESS, the address the experiment's host resolves to")
    p.add_argument("--cacert", help="the only root CA to trust")
    p.add_argument("--participants", type=int, default=2)
    p.add_argument("--check-login", action="store_true",
                   help="then prove the admin pages need the generated password (a wrong one is refused)")
    args = p.parse_args(argv)
    password, rest_key = _secret_values(args.kubeconfig, args.namespace)
    with tempfile.TemporaryDirectory(prefix="oforest-bots-", ignore_cleanup_errors=True) as tmp:
        out = play(args.url, password, rest_key, Path(tmp), participants=args.participants, resolve=args.resolve,
                   cacert=args.cacert)
    text = (out.stdout + out.stderr).replace(password, "********").replace(rest_key, "********")
    print(text)
    if out.returncode != 0 or "finished in" not in out.stdout:
        print("the browser bots did not finish the session (exit %d)" % out.returncode, file=sys.stderr)
        return 1
    if args.check_login:
        before, wrong, right = admin_login(args.url, password, args.resolve, args.cacert)
        print("admin pages without login: HTTP %d; wrong password let in: %s; generated password let in: %s"
              % (before, wrong, right))
        if before == 200 or wrong or not right:
            print("the admin pages do not require the generated password", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
