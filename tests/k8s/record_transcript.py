"""Re-record the Kubernetes API transcript (tests/fixtures/k8s-api-transcript/) from a REAL control
plane: etcd, kube-apiserver and kube-controller-manager built from tests/k8s/go.mod
(tests/k8s/controlplane.py).

    python tests/k8s/record_transcript.py                     # both recordings, one control plane each
    python tests/k8s/record_transcript.py second-recording    # only one ("." is the first recording)

Every recorded step's request (method, path, query, headers, body) is sent again, in the order the
recording needs, and the server's answer replaces the recorded response. Requests and step texts stay
as they are, except the words in a step text that report what was observed: `-- resourceVersion
CHANGED/unchanged`, `generation A -> B` and measured waits (`gone after 0.5 s`, `t+0.01s`), which are
written from this run. Volatile values are replaced by the placeholders each folder's README
describes (per file, numbered in order of appearance), so a later run differs only where the server
behaves differently. The files are written only after the whole recording has succeeded.

The conditions are those the READMEs describe for the original recording: no kubelet and no
kube-scheduler (pods stay Pending with no conditions), kube-controller-manager running except in
09b, a client certificate of a `system:masters` user (no credentials where a step says so).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from tests.k8s.controlplane import ControlPlane, binaries  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s-api-transcript"

# The order the steps must run in, read from the recordings themselves (not the file names):
# - first recording: 11-rollout-status GETs the Deployment of 02 at generation 1 with its first
#   ReplicaSet, so it ran before 03 changed the image; 07 asks for cert-manager.io "before CRD", so
#   before 08; 10 uses the namespace that 09 deletes; 09b needs kube-controller-manager stopped, so
#   it runs last, after stopping it.
# - second recording: its 01 lists the cert-manager.io group in /apis, which only 08 creates (08's
#   CRD apply answered 201), so discovery was taken last; the other files run in their order.
RECORDINGS = {
    ".": {
        "order": ["01-discovery.json", "02-apply-create-reapply.json", "11-rollout-status.json", "03-change.json",
                  "04-dry-run.json", "05-conflict.json", "06-invalid.json", "07-not-found.json", "08-crd.json",
                  "10-auth.json", "09-list-delete.json"],
        "without_controller_manager": ["09b-pvc-without-controller-manager.json"],
        "style": "first", "indent": 2, "user_agent": None,  # requests' own User-Agent
        "accept": None,
    },
    "second-recording": {
        "order": ["02-ssa-create-reapply.json", "03-ssa-change-field.json", "04-dry-run.json",
                  "05-conflict-force.json", "06-invalid-objects.json", "07-not-found.json",
                  "08-crd-established.json", "09-list-delete-prune.json", "10-auth.json",
                  "11-deployment-status.json", "01-discovery.json"],
        "without_controller_manager": [],
        # its README: `Accept: application/json` on every request; managers named after the
        # User-Agent (`transcript-recorder`) where no fieldManager is sent
        "style": "second", "indent": 1, "user_agent": "transcript-recorder", "accept": "application/json",
    },
}

UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
POLL_TIMEOUT = 180  # s; a deletion or a CRD that takes longer is recorded as it then is


# ---------------------------------------------------------------------------------------------
# the client

def client_certificate(cp, directory):
    """A client certificate of a system:masters user, signed by the control plane's CA."""
    pki = Path(cp.dir) / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "transcript-recorder"),
                      x509.NameAttribute(x509.oid.NameOID.ORGANIZATION_NAME, "system:masters")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt, pem = Path(directory) / "recorder.crt", Path(directory) / "recorder.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return str(crt), str(pem)


class Client:
    def __init__(self, cp, cert, user_agent=None, accept=None):
        self.url, self.ca, self.cert = cp.url, str(cp.ca), cert
        self.session = requests.Session()
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        if accept:
            self.session.headers["Accept"] = accept

    def send(self, req, step=""):
        """One request as recorded; returns (status, body, Warning header or None)."""
        headers = dict(req.get("headers") or {})
        headers.update(req.get("extra_headers") or {})
        # Without a client certificate where the step says so, and whenever the step sends its own
        # credentials (a valid certificate would authenticate the request before a bad token is read).
        anonymous = req.get("client_certificate") is False or "without client certificate" in step or \
            any(k.lower() == "authorization" for k in headers)
        body = req.get("body")
        r = self.session.request(req["method"], self.url + req["path"], params=req.get("query") or None,
                                 headers=headers, data=json.dumps(body).encode() if body is not None else None,
                                 verify=self.ca, cert=None if anonymous else self.cert, timeout=30)
        ctype = r.headers.get("Content-Type", "")
        return r.status_code, (r.json() if "json" in ctype else r.text), r.headers.get("Warning")


# ---------------------------------------------------------------------------------------------
# replaying one file

def _sleep_until(deadline):
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _early_in_second():
    """Wait until the wall clock is early in a second, so that the steps that follow "immediately"
    fall into the same second of managedFields time as this one, as those steps say."""
    frac = time.time() % 1
    if frac > 0.4:
        time.sleep(1.02 - frac)


def _established(body):
    if not isinstance(body, dict):
        return False
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _rv(body):
    return ((body or {}).get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None


def replay(client, entries, log):
    """Send every step of one file; returns the entries with the new responses (raw values)."""
    out = []
    steps = [e for e in entries if "request" in e]
    done = time.monotonic()  # when the previous step's answer came
    applied, deleted, polls = {}, {}, {}
    index = -1
    for entry in entries:
        if "request" not in entry:
            out.append(dict(entry))  # a summary: rebuilt from the steps afterwards
            continue
        index += 1
        step, req = entry["step"], entry["request"]
        path, new_step = req["path"], step
        # How long the step came after what (its own words); the measured waits are written back.
        gone = re.search(r"\(gone after [\d.]+ s( more)?\)|after ~[\d.]+s\b", step)
        ready = re.search(r"\(t\+[\d.]+s\)|\(after \d+ polls, [\d.]+ s\)", step)
        after_write = re.search(r"(\d+(?:\.\d+)?)\s*s after (apply|delete)\b", step)
        after_round = re.search(r">(\d+(?:\.\d+)?) s after previous round", step)
        later = re.search(r"(\d+(?:\.\d+)?)\s*s later\b|after (\d+(?:\.\d+)?) s\b", step)
        if after_write:
            since = (applied if after_write.group(2) == "apply" else deleted)[path]
            _sleep_until(since + float(after_write.group(1)))
        elif after_round:
            this_round = step.split("(")[0]
            previous = steps[index - 1]["step"].split("(")[0] if index else None
            if previous != this_round:
                _sleep_until(done + float(after_round.group(1)) + 0.1)
        elif later and not gone and not ready:
            _sleep_until(done + float(later.group(1) or later.group(2)))
        if any(re.search(r"immediately|same (wall-clock )?second", s["step"]) for s in steps[index + 1:index + 3]):
            _early_in_second()
        note = None
        if isinstance(entry.get("note"), dict) and "resourceVersion_of_GET_just_before" in entry["note"]:
            before = client.send({"method": "GET", "path": path, "query": {}, "headers": {},
                                  "extra_headers": req.get("extra_headers")}, step)[1]
            note = {"resourceVersion_of_GET_just_before": _rv(before)}
        started = time.monotonic()
        status, body, warning = client.send(req, step)
        if gone or ready:  # poll, as the recorder did, until the object is gone / the CRD established
            while not (status == 404 if gone else _established(body)) and time.monotonic() - started < POLL_TIMEOUT:
                polls[path] = polls.get(path, 0) + 1
                time.sleep(0.1 if gone else 0.02)
                status, body, warning = client.send(req, step)
            polls[path] = polls.get(path, 0) + 1
            now = time.monotonic()
            if gone:
                waited = now - (done if gone.group(1) else deleted.get(path, started))
                text = "(gone after %.1f s%s)" % (waited, gone.group(1) or "") if gone.group(0).startswith("(") \
                    else "after ~%gs" % round(waited, 1 if waited < 10 else 0)
            elif ready.group(0).startswith("(t+"):
                text = "(t+%.2fs)" % (now - applied[path])
            else:
                text = "(after %d polls, %.2f s)" % (polls[path], now - applied[path])
            new_step = step.replace((gone or ready).group(0), text)
        elif req["method"] == "GET":
            polls[path] = polls.get(path, 0) + 1
        done = time.monotonic()
        if req["method"] == "PATCH":
            applied[path], polls[path] = done, 0
        elif req["method"] == "DELETE":
            deleted[path] = done
        response = {"status": status, "body": body}
        if warning:
            response["headers"] = {"warning": warning}
        new = {}
        for key, value in entry.items():  # the recorded key order
            new[key] = {"step": new_step, "request": req, "response": response}.get(key, value)
        if note is not None:
            note["resourceVersion_in_this_response"] = _rv(body)
            note["rv_changed_by_this_apply"] = note["resourceVersion_of_GET_just_before"] != _rv(body)
            new["note"] = note
        out.append(new)
        log("  %-3s %s %s -> %s%s" % (req["method"][:3], path, req.get("query") or "", status,
                                      "" if new_step == step else "   [%s]" % new_step))
    return out


# ---------------------------------------------------------------------------------------------
# discovery documents, trimmed as recorded

def trim_discovery(old, new, style):
    if not isinstance(new, dict) or not isinstance(old, dict):
        return new
    if "gitVersion" in old:  # /version
        if style == "second":  # "body trimmed to major/minor/gitVersion"
            return {k: new[k] for k in old if k in new}
        # build details are placeholders, as recorded
        return {k: ("<%s>" % k if k in ("gitCommit", "gitTreeState", "buildDate", "goVersion") else v)
                for k, v in new.items()}
    if "resources" in old:
        kept = {r["name"].split("/")[0] for r in old["resources"]}
        if style == "first":  # "trimmed to the 15 relevant resources" (no subresources)
            resources = [r for r in new["resources"] if r["name"] in kept]
        else:  # "<names> and their subresources", with a note of what was cut
            resources = [r for r in new["resources"] if r["name"].split("/")[0] in kept]
        doc = dict(new, resources=resources)
        if "_trimmed_note" in old:
            doc["_trimmed_note"] = "resources trimmed by the recorder: kept %d of %d entries (%s and their " \
                "subresources)" % (len(resources), len(new["resources"]), ", ".join(sorted(kept)))
        return doc
    return new


# ---------------------------------------------------------------------------------------------
# placeholders (each folder's README, "Placeholders")

class Placeholders:
    """One file's placeholders: the same raw value gets the same placeholder, numbered in order of
    appearance (per scope: per object for the first recording's resourceVersions)."""

    def __init__(self, style):
        self.style = style
        self.maps = {}

    def get(self, name, value, scope=None):
        table = self.maps.setdefault((name, scope), {})
        if value not in table:
            table[value] = "<%s-%d>" % (name, len(table) + 1)
        return table[value]

    # the first recording numbers resourceVersions per object, which needs the object around them
    def objects(self, node, path, item_kind=None):
        if isinstance(node, list):
            for item in node:
                self.objects(item, path, item_kind)
            return
        if not isinstance(node, dict):
            return
        meta = node.get("metadata")
        if isinstance(meta, dict):
            kind = node.get("kind") or item_kind
            if "items" in node:
                scope = ("list", path)
            else:
                scope = (kind, meta.get("namespace"), meta.get("name"))
            if self.style == "first" and isinstance(meta.get("resourceVersion"), str):
                meta["resourceVersion"] = self.get("rv", meta["resourceVersion"], scope)
            if self.style == "first" and meta.get("generateName") and meta.get("name"):
                meta["name"] = self.get("generated-name", meta["name"])
        for key, value in node.items():
            child_kind = node["kind"][:-len("List")] if key == "items" and str(node.get("kind")).endswith("List") \
                else None
            if key != "metadata" or not isinstance(value, dict):
                self.objects(value, path, child_kind)

    def values(self, node, key=None):
        """uids (also inside managedFields keys), timestamps, cluster IPs, continue tokens and, in
        the second recording, every resourceVersion (per file)."""
        if isinstance(node, dict):
            return {self.text(k): self.values(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self.values(v, key) for v in node]
        if not isinstance(node, str) or not node:
            return node
        if key in ("clusterIP", "clusterIPs") and node != "None":
            return self.get("ip" if self.style == "first" else "clusterIP", node)
        if self.style == "second" and key == "continue":
            return self.get("continue-token", node)
        if self.style == "second" and key and key.startswith("resourceVersion") and not node.startswith("<"):
            return self.get("rv", node)
        if key == "serverAddress":  # the control plane's random port
            return "<server-address>"
        if TIMESTAMP.fullmatch(node):
            return "<time>" if self.style == "first" else self.get("time", node)
        return self.text(node)

    def text(self, s):
        return UID.sub(lambda m: self.get("uid", m.group(0)), s) if isinstance(s, str) else s


def normalise(entries, style):
    marks = Placeholders(style)
    out = []
    for entry in entries:
        entry = copy.deepcopy(entry)
        if "response" in entry:
            marks.objects(entry["response"]["body"], entry["request"]["path"])
        out.append(marks.values(entry))
    return out


# ---------------------------------------------------------------------------------------------
# what the steps say about their answers, written from the new answers

def annotate(entries):
    """`-- resourceVersion CHANGED/unchanged` (first recording: compared with the previous answer
    for the same object) and `generation A -> B` say what the answer showed."""
    seen = {}
    for entry in entries:
        body = entry.get("response", {}).get("body")
        meta = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or "name" not in meta or "items" in body:
            continue
        key = (body.get("kind"), meta.get("namespace"), meta["name"])
        previous = seen.get(key)
        if previous and "resourceVersion" in meta:
            changed = previous.get("resourceVersion") != meta["resourceVersion"]
            entry["step"] = re.sub(r"(-- (?:resourceVersion|rv) )(CHANGED|unchanged)",
                                   lambda m: m.group(1) + ("CHANGED" if changed else "unchanged"), entry["step"])
            if "generation" in meta:
                entry["step"] = re.sub(r"generation \d+ -> \d+", "generation %s -> %s" % (
                    previous.get("generation"), meta["generation"]), entry["step"])
        if entry["request"]["method"] != "DELETE" and "resourceVersion" in meta:
            seen[key] = meta
    return entries


def summarise(entries):
    """The second recording's summary entry, rebuilt from the steps it sums up."""
    for entry in entries:
        if "request" in entry or not isinstance(entry.get("note"), dict):
            continue
        note = {}
        for key in entry["note"]:
            if key == "reapply_rounds":
                note[key] = [{"round": int(re.search(r"apply #(\d+)", e["step"]).group(1)),
                              "kind": e["request"]["body"]["kind"], "name": e["request"]["body"]["metadata"]["name"],
                              "status": e["response"]["status"],
                              "rv_changed_by_this_apply": e["note"]["rv_changed_by_this_apply"]}
                             for e in entries if "request" in e and "rv_changed_by_this_apply" in (e.get("note") or {})]
            elif key == "resourceVersion_of_quick_secret_responses_in_order":
                note[key] = [_rv(e["response"]["body"]) for e in entries
                             if e["step"].startswith("Secret quick-secret: re-apply")]
            else:
                raise SystemExit("do not know how to rebuild summary %r" % key)
        entry["note"] = note
    return entries


# ---------------------------------------------------------------------------------------------

def stop_component(cp, name):
    for proc in cp.procs:
        if proc.name == name and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def record(folder, log):
    spec = RECORDINGS[folder]
    directory = FIXTURES / folder
    names = spec["order"] + spec["without_controller_manager"]
    present = sorted(p.name for p in directory.glob("[01]*.json"))
    if sorted(names) != present:
        raise SystemExit("%s: files %s, the recorder knows %s" % (directory, present, sorted(names)))
    work = Path(tempfile.mkdtemp(prefix="oforest-transcript-"))
    results = {}
    try:
        with ControlPlane(binaries(), work / "controlplane") as cp:
            # The recording's conditions: no scheduler (pods unscheduled, with no conditions)
            stop_component(cp, "kube-scheduler")
            client = Client(cp, client_certificate(cp, work), spec["user_agent"], spec["accept"])
            version = client.send({"method": "GET", "path": "/version"})[1]
            log("%s: %s on %s (%s)" % (folder, version.get("gitVersion"), cp.url, work))
            for name in names:
                if name == (spec["without_controller_manager"] or [None])[0]:
                    log("stopping kube-controller-manager")
                    stop_component(cp, "kube-controller-manager")
                log(name)
                results[name] = replay(client, json.loads((directory / name).read_text()), log)
    except BaseException:
        log("left for inspection: %s" % work)
        raise
    shutil.rmtree(work, ignore_errors=True)
    for name in names:
        old = json.loads((directory / name).read_text())
        entries = results[name]
        for old_entry, entry in zip(old, entries):
            if "response" in entry:
                entry["response"]["body"] = trim_discovery(old_entry["response"]["body"], entry["response"]["body"],
                                                           spec["style"])
        entries = normalise(entries, spec["style"])
        entries = annotate(entries) if spec["style"] == "first" else summarise(entries)
        (directory / name).write_text(json.dumps(entries, indent=spec["indent"]) + "\n")
    log("%s: wrote %d files" % (directory, len(names)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", metavar="FOLDER",
                    help="which recording: %s ('.' is the first; default: both)" % ", ".join(RECORDINGS))
    args = ap.parse_args(argv)
    unknown = [f for f in args.folders if f not in RECORDINGS]
    if unknown:
        ap.error("unknown recording %s" % ", ".join(unknown))

    def log(line):
        print(line, flush=True)
    for folder in args.folders or list(RECORDINGS):
        record(folder, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
