"""A REAL Kubernetes control plane for the tests: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built from upstream (tests/k8s/build.sh), run as processes on loopback.

No kubelet runs here: pods stay Pending and Deployments never become Available, exactly as on a
cluster whose node is down. Tests that need running pods use the node (tests/standins/microk8s/,
molecule/microk8s).

    python -m tests.k8s.controlplane up DIR     # start, write DIR/admin.kubeconfig, stay in front
    with ControlPlane(bindir, workdir) as cp:   # from Python; cp.kubeconfig, cp.url, cp.token

Certificates are made with the `cryptography` library (a dependency of ansible-core); the admin
identity is a static token (`--token-auth-file`, group system:masters), as MicroK8s' admin
kubeconfig uses a token too. Flags: KUBERNETES.md in the team's notes, checked against
`kube-apiserver --help` of the built binary.
"""
from __future__ import annotations

import ctypes
import datetime
import ipaddress
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

SERVICE_CIDR = "10.152.183.0/24"  # MicroK8s' service range (its kube-apiserver args)
SERVICE_IP = "10.152.183.1"


def _die_with_parent():
    """The components end when the process that started them ends, however it ends (PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(cn, org=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path, cert):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class PKI:
    """A CA and the certificates a control plane needs, in one directory."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca = (x509.CertificateBuilder().subject_name(_name("oforest-test-ca")).issuer_name(_name("oforest-test-ca"))
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                   .sign(self.ca_key, hashes.SHA256()))
        _write_cert(self.path("ca.crt"), self.ca)
        _write_key(self.path("ca.key"), self.ca_key)

    def path(self, name):
        return self.dir / name

    def issue(self, name, cn, org=None, server_names=(), client=True):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(self.ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server_names:
            usages.append(x509.oid.ExtendedKeyUsageOID.SERVER_AUTH)
            alt = []
            for n in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    alt.append(x509.DNSName(n))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        _write_cert(self.path(name + ".crt"), cert)
        _write_key(self.path(name + ".key"), key)
        return self.path(name + ".crt"), self.path(name + ".key")

    def service_account_keys(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(self.path("sa.key"), key)
        self.path("sa.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return self.path("sa.key"), self.path("sa.pub")


def kubeconfig(path: Path, url, ca, token=None, cert=None, key=None, user="admin"):
    auth = {"token": token} if token else {"client-certificate": str(cert), "client-key": str(key)}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "oforest-test",
        "clusters": [{"name": "oforest-test", "cluster": {"server": url, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": auth}],
        "contexts": [{"name": "oforest-test", "context": {"cluster": "oforest-test", "user": user}}],
    }))
    path.chmod(0o600)
    return path


class ControlPlane:
    def __init__(self, bindir, workdir, authorization="Node,RBAC", extra_names=()):
        self.bin = Path(bindir)
        self.dir = Path(workdir)
        self.authorization = authorization
        self.extra_names = tuple(extra_names)
        self.procs = []
        self.token = secrets.token_hex(16)
        self.port = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=120):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()  # nothing half-started stays behind
            raise

    def _start(self, timeout):
        self.dir.mkdir(parents=True, exist_ok=True)
        pki = PKI(self.dir / "pki")
        self.ca = pki.path("ca.crt")
        serving = pki.issue("apiserver", "kube-apiserver", server_names=(
            "127.0.0.1", SERVICE_IP, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local") + self.extra_names, client=False)
        kubelet_client = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
        sa_key, sa_pub = pki.service_account_keys()
        (self.dir / "tokens.csv").write_text('%s,admin,admin,"system:masters"\n' % self.token)
        etcd_port, etcd_peer = free_port(), free_port()
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self._spawn("etcd", [
            "--name", "oforest", "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", "http://127.0.0.1:%d" % etcd_port,
            "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_port,
            "--listen-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
            "--initial-cluster", "oforest=http://127.0.0.1:%d" % etcd_peer,
            "--unsafe-no-fsync", "--log-level", "warn"])
        self._spawn("kube-apiserver", [
            "--etcd-servers", "http://127.0.0.1:%d" % etcd_port,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(self.port),
            "--tls-cert-file", str(serving[0]), "--tls-private-key-file", str(serving[1]),
            "--client-ca-file", str(self.ca), "--token-auth-file", str(self.dir / "tokens.csv"),
            "--kubelet-client-certificate", str(kubelet_client[0]), "--kubelet-client-key", str(kubelet_client[1]),
            "--authorization-mode", self.authorization,
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(sa_pub), "--service-account-signing-key-file", str(sa_key),
            "--service-cluster-ip-range", SERVICE_CIDR, "--allow-privileged=true",
            "--enable-admission-plugins", "NodeRestriction", "--profiling=false", "--v=0"])
        self.kubeconfig = kubeconfig(self.dir / "admin.kubeconfig", self.url, self.ca, token=self.token)
        self.wait_ready(timeout)
        cm = pki.issue("controller-manager", "system:kube-controller-manager")
        sched = pki.issue("scheduler", "system:kube-scheduler")
        cm_kc = kubeconfig(self.dir / "controller-manager.kubeconfig", self.url, self.ca, cert=cm[0], key=cm[1],
                           user="system:kube-controller-manager")
        sched_kc = kubeconfig(self.dir / "scheduler.kubeconfig", self.url, self.ca, cert=sched[0], key=sched[1],
                              user="system:kube-scheduler")
        self._spawn("kube-controller-manager", [
            "--kubeconfig", str(cm_kc), "--authentication-kubeconfig", str(cm_kc),
            "--authorization-kubeconfig", str(cm_kc), "--leader-elect=false",
            "--service-account-private-key-file", str(sa_key), "--root-ca-file", str(self.ca),
            "--use-service-account-credentials=true", "--cluster-signing-cert-file", str(self.ca),
            "--cluster-signing-key-file", str(pki.path("ca.key")), "--bind-address", "127.0.0.1",
            "--secure-port", str(free_port()), "--service-cluster-ip-range", SERVICE_CIDR, "--v=0"])
        self._spawn("kube-scheduler", [
            "--kubeconfig", str(sched_kc), "--authentication-kubeconfig", str(sched_kc),
            "--authorization-kubeconfig", str(sched_kc), "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--v=0"])
        self.wait_controllers(timeout)
        return self

    def _spawn(self, name, args):
        with open(self.dir / ("%s.log" % name), "ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([str(self.bin / name)] + args, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        proc.name = name
        self.procs.append(proc)

    def _check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                tail = (self.dir / ("%s.log" % p.name)).read_text(errors="replace")[-3000:]
                raise RuntimeError("%s exited with %s:\n%s" % (p.name, p.returncode, tail))

    def get(self, path):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, r.read().decode()

    def wait_ready(self, timeout):
        self._wait_for("/readyz", timeout, "kube-apiserver not ready after %ss (log: %s)" % (timeout, self.dir))

    def wait_controllers(self, timeout):
        """The controller-manager is working once it has made the default namespace's service account."""
        self._wait_for("/api/v1/namespaces/default/serviceaccounts/default", timeout,
                       "kube-controller-manager made no service account in %ss (log: %s)" % (timeout, self.dir))

    def _wait_for(self, path, timeout, failure):
        """Poll until GET path answers 200, failing early when a component has exited."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if self.get(path)[0] == 200:
                    return
            except Exception:  # not listening yet, or 403/404/503 while starting
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.3)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def binaries():
    """The cached binaries (building them on a cold cache): tests/k8s/build.sh's last line."""
    if os.environ.get("OFOREST_K8S_BIN"):
        return Path(os.environ["OFOREST_K8S_BIN"])
    out = subprocess.run([str(Path(__file__).with_name("build.sh"))], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def main(argv):
    if len(argv) != 3 or argv[1] != "up":
        print(__doc__)
        return 2
    cp = ControlPlane(binaries(), argv[2])
    cp.start()
    print("kube-apiserver %s ready; KUBECONFIG=%s" % (cp.url, cp.kubeconfig), flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
