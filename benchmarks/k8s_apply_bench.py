#!/usr/bin/env python3
"""Side-by-side benchmark of k8s_apply's engine against the serial baseline.

Same API server, same manifests (one oTree experiment = the 13 objects of the recorded transcript,
replicated into 1, 10 and 50 namespaces), run one after the other:
  baseline   a plain serial loop, one server-side-apply PATCH per object with the `kubernetes`
             client (the serial limit); it reports "changed" when resourceVersion moved, as a naive
             client does
  ours       the k8s_apply engine, one call for the whole list (in-process)
  module     the k8s_apply module in one ansible-playbook task (includes ansible's start-up)
  kubectl    kubectl apply --server-side -f (warm discovery cache, --validate=false: the stand-in
             serves no OpenAPI document)
  k8s-list   kubernetes.core.k8s, one task with the whole list, server_side_apply
  k8s-task   kubernetes.core.k8s, one task per object (a loop), sizes <= 10 only
For each: first apply and no-op re-apply, wall time, HTTP requests, writes, objects reported changed.
The API server is the STAND-IN (tests/k8s_standin) unless OFOREST_KUBECONFIG names a real cluster.
Usage: benchmarks/k8s_apply_bench.py [--sizes 1,10,50] [--repeat 3]
"""
import argparse
import json
import re
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from tests.integration.conftest import experiment_manifests  # noqa: E402
from tests.k8s_standin.server import start_background, write_kubeconfig  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s_apply import (  # noqa: E402
    Client, Engine, KINDS, normalize)


def make_client(kubeconfig):
    return Client(kubeconfig=kubeconfig)


PLAYBOOKS = {
    "module": """
- hosts: localhost
  gather_facts: false
  tasks:
    - oforest.otree.k8s_apply:
        kubeconfig: "{{ kc }}"
        manifests: "{{ manifests }}"
""",
    "k8s-list": """
- hosts: localhost
  gather_facts: false
  tasks:
    - kubernetes.core.k8s:
        kubeconfig: "{{ kc }}"
        definition: "{{ manifests }}"
        apply: true
        server_side_apply: {field_manager: k8score}
""",
    "k8s-task": """
- hosts: localhost
  gather_facts: false
  tasks:
    - kubernetes.core.k8s:
        kubeconfig: "{{ kc }}"
        definition: "{{ item }}"
        apply: true
        server_side_apply: {field_manager: k8score}
      loop: "{{ manifests }}"
""",
}


TASK_SECONDS = {}


def playbook(tool, manifests, kubeconfig, workdir):
    pb = workdir / ("%s.yml" % tool)
    pb.write_text(PLAYBOOKS[tool])
    extra = workdir / ("%s-vars.json" % tool)
    extra.write_text(json.dumps({"manifests": manifests, "kc": str(kubeconfig)}))
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(pb), "-e", "@%s" % extra], capture_output=True, text=True, env=env, cwd=str(workdir))
    if proc.returncode:
        raise SystemExit("%s failed:\n%s\n%s" % (tool, proc.stdout[-3000:], proc.stderr[-3000:]))
    recap = [l for l in proc.stdout.splitlines() if l.startswith("localhost") and "changed=" in l][0]
    changed = int(recap.split("changed=")[1].split()[0])
    # a loop reports changed once per task: count the changed items instead
    items = proc.stdout.count("changed: [localhost] => (item=")
    # the task's own time (profile_tasks), without ansible-playbook's start-up
    times = re.findall(r"^(?:oforest\.otree\.k8s_apply|kubernetes\.core\.k8s) -+ ([0-9.]+)s$", proc.stdout, re.M)
    TASK_SECONDS[tool] = float(times[0]) if times else float("nan")
    return 0, items if tool == "k8s-task" else changed


def kubectl(manifests, kubeconfig, workdir):
    f = workdir / "kubectl.yaml"
    f.write_text(yaml.safe_dump_all(manifests))
    proc = subprocess.run([os.environ.get("KUBECTL", "kubectl"), "--kubeconfig", str(kubeconfig), "--cache-dir",
                           str(workdir / "kubectl-cache"), "apply", "--server-side", "--validate=false",
                           "--field-manager", "kubectl", "-f", str(f)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit("kubectl failed: %s" % proc.stderr[-2000:])
    # kubectl prints "serverside-applied" for every object: it does not tell changed from unchanged
    return 0, proc.stdout.count("serverside-applied")


def ours(manifests, kubeconfig):
    client = make_client(kubeconfig)
    results = Engine(client).run(manifests)
    return client.requests, sum(r["action"] != "unchanged" for r in results)


def baseline(manifests, kubeconfig, state):
    client = make_client(kubeconfig)
    changed = 0
    for obj in manifests:
        plural, namespaced = KINDS[(obj["apiVersion"], obj["kind"])]
        meta = obj["metadata"]
        base = "/api/%s" % obj["apiVersion"] if "/" not in obj["apiVersion"] else "/apis/%s" % obj["apiVersion"]
        path = base + ("/namespaces/%s" % meta["namespace"] if namespaced else "") + "/%s/%s" % (plural, meta["name"])
        status, after = client.request("PATCH", path, {"fieldManager": "baseline"}, obj, "application/apply-patch+yaml")
        rv = after["metadata"]["resourceVersion"]
        if status == 201 or state.get(path) != rv:
            changed += 1
        state[path] = rv
    return client.requests, changed


def experiments(n, prefix):
    out = []
    for i in range(n):
        out += experiment_manifests("%s-%d" % (prefix, i))
    return out


TOOLS = ("baseline", "ours", "module", "kubectl", "k8s-list", "k8s-task")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS))
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="oforest-bench-"))
    kubeconfig = os.environ.get("OFOREST_KUBECONFIG")
    server = None
    if kubeconfig:
        where = "real cluster (%s)" % kubeconfig
    else:
        server, url = start_background(kubelet=True)
        kubeconfig = str(write_kubeconfig(workdir / "kubeconfig", url))
        where = "STAND-IN API server (tests/k8s_standin)"
    tools = args.tools.split(",")
    print("k8s_apply benchmark on %s; no-op = median of %d re-applies\n" % (where, args.repeat))
    print("%-5s %-9s %9s %7s %7s %8s | %9s %7s %7s %8s | %8s | %s" % (
        "exps", "tool", "first s", "reqs", "writes", "changed", "no-op s", "reqs", "writes", "changed", "vs base",
        "task s (no-op, without ansible start-up)"))
    for size in [int(s) for s in args.sizes.split(",")]:
        rows = {}
        for tool in tools:
            if tool == "k8s-task" and size > 10:
                continue
            manifests = experiments(size, "b-%s-%s" % (tool.replace("-", ""), uuid.uuid4().hex[:4]))
            state = {}
            runs = {
                "baseline": lambda: baseline(manifests, kubeconfig, state),
                "ours": lambda: ours(manifests, kubeconfig),
                "kubectl": lambda: kubectl(manifests, kubeconfig, workdir),
            }
            run = runs.get(tool) or (lambda t=tool: playbook(t, manifests, kubeconfig, workdir))

            def timed():
                r0 = server.store.requests if server else 0
                w0 = server.store.writes if server else 0
                t0 = time.perf_counter()
                reqs, changed = run()
                secs = time.perf_counter() - t0
                if server:
                    reqs, writes = server.store.requests - r0, server.store.writes - w0
                else:
                    writes = -1
                return secs, reqs, writes, changed
            first = timed()
            time.sleep(1.1)  # a later second, as between two real runs
            noops = []
            for _ in range(args.repeat):
                noops.append(timed())
                time.sleep(1.1)
            noop = sorted(noops)[len(noops) // 2]
            rows[tool] = (first, noop, TASK_SECONDS.get(tool))
        base = rows.get("baseline", (None, (None,)))[1][0]
        for tool, (first, noop, task) in rows.items():
            ratio = "%7.2fx" % (base / noop[0]) if base else "      -"
            print("%-5d %-9s %9.3f %7d %7d %8d | %9.3f %7d %7d %8d | %8s | %s" % (
                (size, tool) + first + noop + (ratio, "%.2f" % task if task is not None else "")))
        print("      (%d objects per run)" % (13 * size))
    print("\n'vs base' = baseline no-op time / this tool's no-op time (higher is faster).")
    print("'changed' = objects the tool reported changed (kubectl reports every object as applied;")
    print("ansible tasks report per task, per item for the loop). 'writes' = writes the stand-in stored.")
    if server:
        server.shutdown()


if __name__ == "__main__":
    main()
