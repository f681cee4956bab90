"""Clustering of the MicroK8s-shaped node (STAND-IN packaging of REAL Kubernetes components).

What a lab admin and the microk8s role see follows MicroK8s 1.35 (canonical/microk8s branch 1.35:
microk8s-resources/wrappers/microk8s-{add-node,join,leave,remove-node}.wrapper, scripts/wrappers/
add_token.py, join.py, leave.py, remove_node.py, common/cluster/utils.py; canonical/microk8s-cluster-agent
pkg/api/v2/join.go, pkg/snap/snap.go, pkg/util/token.go):
  add-node    [--token T (at least 32 characters)] [--token-ttl S] [--format pretty|short|token|
              token-check|json|yaml]; the token goes to $SNAP_DATA/credentials/cluster-tokens.txt
              (`T` is used once, `T|expiry` until it expires); the URL is <ip>:25000/<token>/<check>,
              check = the first 12 hex digits of sha256 over the DER of certs/server.crt.
  join        URL [--worker] [--skip-verify]: "Contacting cluster at <ip>", an HTTPS POST of
              /cluster/api/v2.0/join to the cluster agent on 25000, the agent's certificate checked
              against the fingerprint; failures print MicroK8s' messages with its exit codes (an
              unreachable node ends in Python's traceback there too). A worker keeps the control
              plane's CA as certs/ca.remote.crt, takes the control plane's kubelet arguments, gets its
              kubelet and kube-proxy certificates signed through /cluster/api/v1.0/sign-cert, writes
              the locks clustered.lock, no-k8s-dqlite, no-cert-reissue, and then runs only the kubelet,
              kube-proxy, containerd and the CNI.
  leave       on a joined node: the node's own certificates and default arguments back, locks removed,
              services restarted; no drain and no call to the control plane (the Node object stays
              until remove-node).
  remove-node NAME|IP [--force]: `kubectl delete node`, the node's callback token forgotten.
The cluster agent serves the join and sign-cert requests with certs/server.crt on 0.0.0.0:25000.

Differences (STAND-IN), stated where a test could notice them:
  - only worker nodes can join: the datastore is one etcd on loopback (MicroK8s: dqlite, which
    control-plane nodes join); a control-plane join is refused with a STAND-IN message (501);
  - a worker's kubeconfigs name the control plane's address directly (MicroK8s: its apiserver-proxy
    on 127.0.0.1:16443 forwarding there);
  - the CNI's client certificate is signed at join too (kube-router stands in for Calico, whose pods
    use a service account).
"""
import hashlib
import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SNAP = os.environ.get("SNAP", "/snap/microk8s/current")
SNAP_DATA = os.environ.get("SNAP_DATA", "/var/snap/microk8s/current")
SNAP_COMMON = os.environ.get("SNAP_COMMON", "/var/snap/microk8s/common")
CERTS = os.path.join(SNAP_DATA, "certs")
CREDS = os.path.join(SNAP_DATA, "credentials")
LOCKS = os.path.join(SNAP_DATA, "var", "lock")
TOKENS = os.path.join(CREDS, "cluster-tokens.txt")
CERT_TOKENS = os.path.join(CREDS, "certs-request-tokens.txt")
CALLBACK_TOKENS = os.path.join(CREDS, "callback-tokens.txt")
AGENT_PORT = 25000
API_PORT = "16443"
KUBECTL = [os.path.join(SNAP, "bin", "kubectl"), "--kubeconfig=" + os.path.join(CREDS, "client.config")]
_lock = threading.Lock()


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw)


def _read_lines(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


def _write_lines(path, lines):
    with open(path + ".tmp", "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.chmod(path + ".tmp", 0o660)
    os.replace(path + ".tmp", path)


def _locked(name):
    return os.path.exists(os.path.join(LOCKS, name))


def fingerprint():
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(CERTS, "server.crt"), "-outform", "der"],
                         stdout=subprocess.PIPE, check=True).stdout
    return hashlib.sha256(der).hexdigest()[:12]


def default_ip():
    """The IPv4 address of the default-route interface (add_token.py's default)."""
    route = _run(["ip", "-4", "route", "show", "default"]).stdout.split()
    if "dev" in route:
        dev = route[route.index("dev") + 1]
        for line in _run(["ip", "-4", "-o", "addr", "show", "dev", dev]).stdout.splitlines():
            return line.split()[3].split("/")[0]
    return (_run(["hostname", "-I"]).stdout.split() or ["127.0.0.1"])[0]


def all_ips():
    """hostname -I without link-local addresses and the CNI's own (kube-bridge here)."""
    cni = set()
    for dev in ("kube-bridge", "vxlan.calico", "flannel.1", "cni0"):
        for line in _run(["ip", "-4", "-o", "addr", "show", "dev", dev]).stdout.splitlines():
            cni.add(line.split()[3].split("/")[0])
    return [ip for ip in _run(["hostname", "-I"]).stdout.split()
            if ":" not in ip and not ip.startswith("169.254.") and ip not in cni]


# ------------------------------------------------------------------------------------------ add-node

def add_node(argv):
    token, ttl, fmt = None, -1, "pretty"
    i = 0
    while i < len(argv):
        a = argv[i]
        key, value = (a.split("=", 1) + [None])[:2] if a.startswith("--") and "=" in a else (a, None)
        if key in ("-t", "--token", "-l", "--token-ttl", "--format"):
            if value is None:
                if i + 1 >= len(argv):
                    sys.stderr.write("Error: Option '%s' requires an argument.\n" % key)
                    return 2
                value, i = argv[i + 1], i + 1
            if key in ("-t", "--token"):
                token = value
            elif key == "--format":
                if value not in ("pretty", "short", "token", "token-check", "json", "yaml"):
                    sys.stderr.write("Error: Invalid value for '--format'.\n")
                    return 2
                fmt = value
            else:
                try:
                    ttl = int(value)
                except ValueError:
                    sys.stderr.write("Error: Invalid value for '-l' / '--token-ttl': '%s' is not a valid integer.\n"
                                     % value)
                    return 2
        else:
            sys.stderr.write("Error: No such option: %s\n" % a)
            return 2
        i += 1
    subject = _run(["openssl", "x509", "-in", os.path.join(CERTS, "ca.crt"), "-noout", "-subject"]).stdout
    if "127.0.0.1" in subject:
        print("Clustering requires a fresh MicroK8s installation. Reinstall with:\nsudo snap remove microk8s\n"
              "sudo snap install microk8s --classic")
        return 1
    if _run(KUBECTL + ["get", "--raw", "/readyz", "--request-timeout=10s"]).returncode:
        sys.stderr.write("microk8s is not running, try microk8s start\n")
        return 1
    if token is not None and len(token) < 32:
        print("Invalid token size.  It must be 32 characters long.")
        return 1
    token = token or secrets.token_hex(16)
    with _lock:
        lines = _read_lines(TOKENS)
        lines.append(token if ttl == -1 else "%s|%d" % (token, int(time.time()) + ttl))
        _write_lines(TOKENS, lines)
    check = fingerprint()
    ip, ips = default_ip(), all_ips()
    url = "%s:%d/%s/%s" % (ip, AGENT_PORT, token, check)
    if fmt == "token":
        print(token)
    elif fmt == "token-check":
        print("%s/%s" % (token, check))
    elif fmt in ("json", "yaml"):
        data = {"token": "%s/%s" % (token, check), "urls": ["%s:%d/%s/%s" % (a, AGENT_PORT, token, check)
                                                            for a in [ip] + [a for a in ips if a != ip]]}
        print(json.dumps(data, indent=2) if fmt == "json" else
              "token: %s\nurls:\n%s" % (data["token"], "".join("- %s\n" % u for u in data["urls"])).rstrip())
    elif fmt == "short":
        print("microk8s join %s" % url)
        for a in ips:
            if a != ip:
                print("microk8s join %s:%d/%s/%s" % (a, AGENT_PORT, token, check))
    else:
        print("From the node you wish to join to this cluster, run the following:\nmicrok8s join %s\n" % url)
        if _locked("ha-cluster"):
            print("Use the '--worker' flag to join a node as a worker not running the control plane, eg:\n"
                  "microk8s join %s --worker\n" % url)
        print("If the node you are adding is not reachable through the default interface you can use one of "
              "the following:")
        for a in [ip] + [a for a in ips if a != ip]:
            print("microk8s join %s:%d/%s/%s" % (a, AGENT_PORT, token, check))
    return 0


# ------------------------------------------------------------------------------------------ the agent

def _consume_token(path, token, single_use=True):
    """pkg/snap/snap.go ConsumeClusterToken + pkg/util/token.go IsValidToken."""
    with _lock:
        lines = _read_lines(path)
        for n, line in enumerate(lines):
            value, _, expiry = line.partition("|")
            if value != token:
                continue
            if expiry and int(expiry) < time.time():
                return False
            if not expiry and single_use:
                _write_lines(path, lines[:n] + lines[n + 1:])
            return True
    return False


def _sign(csr_pem, name, ip, days=3650):
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext, crt = (os.path.join(tmp, n) for n in ("req.csr", "ext.cnf", "out.crt"))
        with open(csr, "w") as f:
            f.write(csr_pem)
        with open(ext, "w") as f:
            if name == "kubelet":
                f.write("subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n"
                        % (_csr_host(csr), ip))
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        out = _run(["openssl", "x509", "-req", "-sha256", "-in", csr, "-CA", os.path.join(CERTS, "ca.crt"),
                    "-CAkey", os.path.join(CERTS, "ca.key"), "-CAcreateserial", "-days", str(days),
                    "-extfile", ext, "-out", crt])
        if out.returncode:
            raise ValueError(out.stderr.strip())
        with open(crt) as f:
            return f.read()


def _csr_host(csr_path):
    subject = _run(["openssl", "req", "-in", csr_path, "-noout", "-subject"]).stdout
    return subject.split("system:node:", 1)[1].split(",")[0].split("/")[0].strip() if "system:node:" in subject \
        else "localhost"


def handle_join(body, peer):
    token = str(body.get("token", ""))
    if not (_consume_token(TOKENS, token) or _consume_token(os.path.join(CREDS, "persistent-cluster-tokens.txt"),
                                                            token, single_use=False)):
        return 500, {"error": "invalid token"}
    own = default_ip()
    if peer in all_ips():
        return 503, {"error": "the joining node has the same IP (%s) as the node we contact" % peer}
    if body.get("worker") not in (True, "as-worker"):
        return 501, {"error": "STAND-IN: only worker nodes can join this node (its datastore is one etcd on "
                              "loopback; MicroK8s' dqlite takes control-plane nodes): join with --worker"}
    callback = secrets.token_hex(16)
    with _lock:
        lines = _read_lines(CERT_TOKENS)
        _write_lines(CERT_TOKENS, lines + ["%s-%s" % (token, n) for n in ("kubelet", "proxy", "router")])
        lines = [l for l in _read_lines(CALLBACK_TOKENS) if not l.startswith(peer + ":")]
        _write_lines(CALLBACK_TOKENS, lines + ["%s:%s %s" % (peer, body.get("port", AGENT_PORT), callback)])
    with open(os.path.join(CERTS, "ca.crt")) as f:
        ca = f.read()
    with open(os.path.join(SNAP_DATA, "args", "kubelet")) as f:
        kubelet_args = f.read()
    authz = "AlwaysAllow"
    with open(os.path.join(SNAP_DATA, "args", "kube-apiserver")) as f:
        for line in f:
            if line.startswith("--authorization-mode="):
                authz = line.strip().split("=", 1)[1]
    return 200, {"ca": ca, "ca_key": None, "service_account_key": "", "callback_token": callback,
                 "apiport": API_PORT, "api_authz_mode": authz, "kubelet_args": kubelet_args,
                 "hostname_override": peer, "control_plane_nodes": [own], "cluster_cidr": "10.1.0.0/16"}


def handle_sign(body, peer):
    token = str(body.get("token", ""))
    name = token.rsplit("-", 1)[-1] if "-" in token else ""
    if name not in ("kubelet", "proxy", "router") or not _consume_token(CERT_TOKENS, token):
        return 500, {"error": "invalid token"}
    try:
        return 200, {"certificate": _sign(str(body.get("request", "")), "kubelet" if name == "kubelet" else name,
                                          peer)}
    except ValueError as e:
        return 500, {"error": "could not sign the request: %s" % e}


class _Agent(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            body = {}
        if self.path == "/cluster/api/v2.0/join":
            code, answer = handle_join(body, self.client_address[0])
        elif self.path == "/cluster/api/v1.0/sign-cert":
            code, answer = handle_sign(body, self.client_address[0])
        else:
            code, answer = 404, {"error": "not found"}
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("cluster-agent: %s %s\n" % (self.address_string(), fmt % args))


def serve_in_background():
    """The agent's API on 0.0.0.0:25000 with certs/server.crt (default-args/cluster-agent)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(CERTS, "server.crt"), os.path.join(CERTS, "server.key"))
    server = ThreadingHTTPServer(("0.0.0.0", AGENT_PORT), _Agent)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


# ------------------------------------------------------------------------------------------ join

def _post(ip, port, path, body, check=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(ip, port, context=context, timeout=30)
    conn.connect()  # as join.py: an unreachable node is not caught
    if check is not None:
        peer = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
        if not peer.startswith(check):
            return None, None
    conn.request("POST", path, json.dumps(body), {"Content-type": "application/json"})
    resp = conn.getresponse()
    text = resp.read().decode()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, {"error": text}


def _invalid(msg):
    print("Invalid connection: %s" % msg)
    return 1


def _keypair_csr(name, subject):
    key, csr = os.path.join(CERTS, name + ".key"), os.path.join(CERTS, name + ".csr")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-new", "-sha256", "-key", key, "-subj", subject, "-out", csr], check=True)
    with open(csr) as f:
        text = f.read()
    os.unlink(csr)
    return text


def _kubeconfig(path, server, ca_file, cert_name, user):
    import base64

    def b64(p):
        with open(p, "rb") as f:
            return base64.b64encode(f.read()).decode()
    with open(path, "w") as f:
        f.write("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n"
                "  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: %s\n"
                "  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {}\nusers:\n- name: %s\n"
                "  user:\n    client-certificate-data: %s\n    client-key-data: %s\n"
                % (b64(ca_file), server, user, user, b64(os.path.join(CERTS, cert_name + ".crt")),
                   b64(os.path.join(CERTS, cert_name + ".key"))))
    os.chmod(path, 0o600)


def _set_arg(service, key, value):
    path = os.path.join(SNAP_DATA, "args", service)
    lines = [l for l in _read_lines(path) if not (l.startswith(key + "=") or l.startswith(key + " ") or l == key)]
    if value is not None:
        lines.append("%s=%s" % (key, value))
    _write_lines(path, lines)
    os.chmod(path, 0o644)


def _restart(*services):
    for s in services:
        subprocess.run(["systemctl", "restart", "snap.microk8s.daemon-%s.service" % s])


def _reset_cni():
    """The node's pod range changes with its cluster (MicroK8s re-applies its CNI at join and leave):
    kube-router's bridge, its CNI configuration (kube-router adds each range it is given to it) and
    the addresses handed out from the old range go, so kube-router sets them up for the new one."""
    subprocess.run(["systemctl", "stop", "snap.microk8s.daemon-kube-router.service"])
    conf = os.path.join("args", "cni-network", "10-kuberouter.conflist")
    with open(os.path.join(SNAP, "default-args", "cni-network", "10-kuberouter.conflist")) as src, \
            open(os.path.join(SNAP_DATA, conf), "w") as dst:
        dst.write(src.read())
    subprocess.run(["ip", "link", "delete", "kube-bridge"], stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", "/var/lib/cni/networks/kube-router"])


def join(argv):
    worker = "--worker" in argv
    skip_verify = "--skip-verify" in argv
    rest = [a for a in argv if a not in ("--worker", "--controlplane", "--skip-verify", "--disable-low-memory-guard")]
    if len(rest) != 1 or rest[0].startswith("-"):
        sys.stderr.write("Usage: microk8s join [OPTIONS] CONNECTION\n")
        return 2
    if os.path.isdir(os.path.join(SNAP_COMMON, "default-storage")):
        print("WARNING: Hostpath storage is enabled and is not suitable for multi node clusters.\n")
    parts = rest[0].split("/")
    if len(parts) not in (2, 3) or parts[0].count(":") != 1:
        return _invalid("Expected format: <master_IP>:<master_PORT>/<token>[/<fingerprint>]")
    ip, port = parts[0].split(":")
    try:
        if len(ip.split(".")) != 4 or not all(0 <= int(o) <= 255 for o in ip.split(".")):
            return _invalid("Invalid master IP")
    except ValueError:
        return _invalid("Invalid master IP")
    if not port.isdigit():
        return _invalid("Master PORT not a number")
    if not 1 <= int(port) <= 65535:
        return _invalid("Master PORT not in range 1:65535")
    token = parts[1]
    if len(token) < 32:
        return _invalid("Cluster token size should be at least 32 bytes")
    check = parts[2] if len(parts) == 3 else None
    if check is not None and len(check) < 12:
        return _invalid("Fingerprint should be at least 12 bytes")
    print("Contacting cluster at %s" % ip)
    progress = os.path.join(LOCKS, "join-in-progress")
    open(progress, "a").close()
    host = os.uname()[1].lower()
    status, answer = _post(ip, int(port), "/cluster/api/v2.0/join",
                           {"token": token, "hostname": host, "port": str(AGENT_PORT),
                            "worker": "as-worker" if worker else False, "can_handle_x509_auth": True,
                            "can_handle_custom_etcd": True}, None if skip_verify else check)
    if status is None:
        print("Joining cluster failed. Could not verify the identity of %s. Use '--skip-verify' to skip server "
              "certificate check." % ip)
        return 4
    if status != 200:
        error = str(answer.get("error", ""))
        print("Connection failed. %s (%d)." % (error[:1].upper() + error[1:], status))
        return 6
    if worker and answer.get("ca_key") is not None:
        print("Joining process failed. Make sure the cluster you connect to supports joining worker nodes.")
        return 1
    remote_ca = os.path.join(CERTS, "ca.remote.crt")
    with open(remote_ca, "w") as f:
        f.write(answer["ca"])
    with open(os.path.join(SNAP_DATA, "args", "kubelet"), "w") as f:
        f.write(answer["kubelet_args"])
    _set_arg("kubelet", "--hostname-override", None)
    _set_arg("kubelet", "--client-ca-file", "${SNAP_DATA}/certs/ca.remote.crt")
    _set_arg("kubelet", "--node-labels", '"microk8s.io/cluster=true,node.kubernetes.io/microk8s-worker='
                                         'microk8s-worker"')
    _set_arg("kube-proxy", "--master", None)
    _set_arg("kube-proxy", "--hostname-override", None)
    subjects = {"kubelet": "/CN=system:node:%s/O=system:nodes" % host, "proxy": "/CN=system:kube-proxy",
                "kube-router": "/CN=system:kube-router/O=system:masters"}
    for name, subject in subjects.items():
        csr = _keypair_csr(name, subject)
        code, signed = _post(ip, int(port), "/cluster/api/v1.0/sign-cert",
                             {"token": "%s-%s" % (token, name.replace("kube-", "")), "request": csr})
        if code != 200:
            print("Failed to sign %s.crt certificate (%d). %s" % (name, code, signed.get("error", "")))
            return 1
        with open(os.path.join(CERTS, name + ".crt"), "w") as f:
            f.write(signed["certificate"])
    server = "https://%s:%s" % (ip, answer["apiport"])
    _kubeconfig(os.path.join(CREDS, "kubelet.config"), server, remote_ca, "kubelet", "kubelet")
    _kubeconfig(os.path.join(CREDS, "proxy.config"), server, remote_ca, "proxy", "kubeproxy")
    _kubeconfig(os.path.join(CREDS, "kube-router.config"), server, remote_ca, "kube-router", "kube-router")
    with open(os.path.join(CREDS, "callback-token.txt"), "w") as f:
        f.write(answer["callback_token"] + "\n")
    for lock in ("clustered.lock", "no-k8s-dqlite", "no-cert-reissue"):
        open(os.path.join(LOCKS, lock), "a").close()
    _reset_cni()
    _restart("etcd", "kubelite", "kube-router")
    os.unlink(progress)
    print("\nThe node has joined the cluster and will appear in the nodes list in a few seconds.\n\n"
          "This worker node gets automatically configured with the API server endpoints.\n"
          "If the API servers are behind a loadbalancer please set the '--refresh-interval' to '0s' in:\n"
          "    /var/snap/microk8s/current/args/apiserver-proxy\n"
          "and replace the API server endpoints with the one provided by the loadbalancer in:\n"
          "    /var/snap/microk8s/current/args/traefik/provider.yaml\n\nSuccessfully joined the cluster.")
    return 0


# ------------------------------------------------------------------------------------------ leave, remove-node

def leave(argv):
    if not _locked("no-cert-reissue") or not _locked("clustered.lock"):
        print("This MicroK8s deployment is not acting as a node in a cluster.")
        return 1
    print("Configuring services.")
    for name in ("ca.remote.crt",):
        try:
            os.unlink(os.path.join(CERTS, name))
        except OSError:
            pass
    for service in ("kubelet", "kube-proxy"):
        with open(os.path.join(SNAP, "default-args", service)) as src, \
                open(os.path.join(SNAP_DATA, "args", service), "w") as dst:
            dst.write(src.read())
    print("Generating new cluster certificates.")
    # the node's own certificates and kubeconfigs again, as the install hook makes them
    subprocess.run([os.path.join(SNAP, "meta", "hooks", "install")], check=True, stdout=subprocess.DEVNULL)
    for lock in ("no-cert-reissue", "clustered.lock", "no-k8s-dqlite"):
        os.unlink(os.path.join(LOCKS, lock))
    _reset_cni()
    _restart("etcd", "kubelite", "kube-router")
    sys.stdout.write("Waiting for node to start. ")
    deadline = time.time() + 30  # STAND-IN: a bounded wait (the node goes on starting after it)
    while time.time() < deadline and _run(KUBECTL + ["get", "--raw", "/readyz", "--request-timeout=5s"]).returncode:
        sys.stdout.write(". ")
        sys.stdout.flush()
        time.sleep(2)
    print()
    return 0


def remove_node(argv):
    if not argv:
        print("Please provide the node you want to remove.")
        return 1
    name = argv[0]
    nodes = _run(KUBECTL + ["get", "nodes", "-o", "json", "--request-timeout=20s"])
    ips = {}
    if nodes.returncode == 0:
        for item in json.loads(nodes.stdout)["items"]:
            for addr in item["status"].get("addresses", []):
                if addr["type"] == "InternalIP":
                    ips[addr["address"]] = item["metadata"]["name"]
    name = ips.get(name, name)
    node_ip = next((ip for ip, n in ips.items() if n == name), None)
    out = _run(KUBECTL + ["get", "no", name, "--request-timeout=20s"])
    if out.returncode:
        sys.stderr.write(out.stderr)
        print("Node %s does not exist in Kubernetes." % name)
        return 1
    if node_ip:
        with _lock:
            _write_lines(CALLBACK_TOKENS, [l for l in _read_lines(CALLBACK_TOKENS) if not l.startswith(node_ip + ":")])
    out = _run(KUBECTL + ["delete", "no", name, "--request-timeout=60s"])
    if out.returncode:
        sys.stderr.write(out.stderr)
        return 1
    return 0
