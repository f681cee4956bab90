#!/usr/bin/env python3
"""Side-by-side benchmark of k8s_apply's engine against the serial baseline.

Same API server, same manifests (one oTree experiment = the 13 objects of the recorded transcript,
replicated into 1, 10 and 50 namespaces), run one after the other:
  baseline   a plain serial loop, one server-side-apply PATCH per object with the `kubernetes`
             client (the serial limit); it reports "changed" when resourceVersion moved, as a naive
             client does
  ours       the k8s_apply engine, one call for the whole list (in-process)
  module     the k8s_apply module in one ansible-playbook task (includes ansible's start-up)
  kubectl    kubectl apply --server-side -f (the built kubectl v1.35, warm discovery cache)
  k8s-list   kubernetes.core.k8s, one task with the whole list, server_side_apply
  k8s-task   kubernetes.core.k8s, one task per object (a loop), sizes <= 10 only
and, for whole experiments (what the otree_experiment role runs; N experiments of our renderer):
  exp-engine   render + the engine per experiment, in-process (the work itself)
  exp-module   the otree_experiments module in one task: the experiments in, a summary out
  exp-before   what the role ran before otree_experiments: otree_manifests checks the experiments,
               kubernetes.core.k8s_info reads each one's Secret (a loop), otree_manifests renders them
               with those values, then k8s_apply applies each experiment's manifests (a loop)
For each: first apply and no-op re-apply, wall time, HTTP requests (the clients we count), objects
reported changed. The API server is REAL: a Kubernetes 1.35 control plane started here from the
binaries of tests/k8s/build.sh (tests/k8s/controlplane.py), or OFOREST_KUBECONFIG's cluster. Every
namespace the benchmark creates is deleted at the end of its size.
Usage: benchmarks/k8s_apply_bench.py [--sizes 1,10,50] [--repeat 3]
"""
import argparse
import json
import re
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from tests.integration.conftest import experiment_manifests  # noqa: E402
from tests.k8s.controlplane import ControlPlane, binaries  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s.client import Client  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import KINDS  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s.engine import Engine  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s.fields import normalize  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.otree_render import render_all, validate_all  # noqa: E402
from ansible_collections.oforest.otree.plugins.modules.otree_experiments import read_secrets  # noqa: E402


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
    "exp-module": """
- hosts: localhost
  gather_facts: false
  tasks:
    - oforest.otree.otree_experiments:
        kubeconfig: "{{ kc }}"
        experiments: "{{ specs }}"
        wait: false
""",
    "exp-before": """
- hosts: localhost
  gather_facts: false
  tasks:
    - oforest.otree.otree_manifests:
        experiments: "{{ specs }}"
        operation: validate
      register: checked
    - kubernetes.core.k8s_info:
        kubeconfig: "{{ kc }}"
        kind: Secret
        namespace: "{{ item.namespace }}"
        name: otree-secrets
      loop: "{{ checked.experiments }}"
      register: stored
      no_log: true
    - oforest.otree.otree_manifests:
        experiments: "{{ specs }}"
        existing_secrets: "{{ stored.results | map(attribute='resources') | flatten }}"
      register: rendered
      no_log: true
    - oforest.otree.k8s_apply:
        kubeconfig: "{{ kc }}"
        manifests: "{{ rendered.experiments[idx].manifests }}"
        owner: "{{ item.owner }}"
        prune: true
        prune_namespaces: ["{{ item.namespace }}"]
      loop: "{{ rendered.experiments | map('dict2items') | map('rejectattr', 'key', 'eq', 'manifests')
                | map('items2dict') | list }}"
      loop_control:
        index_var: idx
        label: "{{ item.name }}"
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
    extra.write_text(json.dumps({"manifests": manifests, "specs": manifests, "kc": str(kubeconfig)}))
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
    # the tasks' own time (profile_tasks), without ansible-playbook's start-up
    times = re.findall(r"^(?:oforest\.otree\.(?:k8s_apply|otree_manifests|otree_experiments)|kubernetes\.core\.k8s"
                       r"(?:_info)?) "
                       r"-+ ([0-9.]+)s$", proc.stdout, re.M)
    TASK_SECONDS[tool] = sum(float(t) for t in times) if times else float("nan")
    return "-", items if tool in ("k8s-task", "exp-before") else changed


def kubectl(manifests, kubeconfig, workdir):
    f = workdir / "kubectl.yaml"
    f.write_text(yaml.safe_dump_all(manifests))
    proc = subprocess.run([os.environ["KUBECTL"], "--kubeconfig", str(kubeconfig), "--cache-dir",
                           str(workdir / "kubectl-cache"), "apply", "--server-side",
                           "--field-manager", "kubectl", "-f", str(f)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit("kubectl failed: %s" % proc.stderr[-2000:])
    # kubectl prints "serverside-applied" for every object: it does not tell changed from unchanged
    return "-", proc.stdout.count("serverside-applied")


def ours(manifests, kubeconfig):
    client = make_client(kubeconfig)
    results = Engine(client).run(manifests)
    return client.requests, sum(r["action"] != "unchanged" for r in results)


def exp_engine(specs, kubeconfig):
    """What otree_experiments does inside the module: render each experiment, apply it with the engine."""
    client = make_client(kubeconfig)
    changed = 0
    stored = read_secrets(client, validate_all(specs))  # kept, as the module keeps them
    existing = dict((s["name"], stored[s["namespace"]]) for s in validate_all(specs) if s["namespace"] in stored)

    def one(item):  # four experiments at a time, as the module does by default
        return Engine(client, owner=item["owner"]).run(item["manifests"], prune=True,
                                                       prune_namespaces=[item["spec"]["namespace"]])
    with ThreadPoolExecutor(max_workers=4) as pool:
        for results in pool.map(one, render_all(specs, existing)):
            changed += sum(r["action"] not in ("unchanged", "kept") for r in results)
    return client.requests, changed


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


def specs(n, prefix):
    """N experiments as a lab lists them (the renderer makes their manifests)."""
    return [{"name": "%s-%d" % (prefix, i), "host": "e%d.%s.experiments.example.org" % (i, prefix),
             "image": "registry.example.org/lab/pgg:1.0.0", "admin_password": "bench-admin-password-%d" % i,
             "rest_key": "bench-rest-key-%04d" % i} for i in range(n)]


def experiments(n, prefix):
    out = []
    for i in range(n):
        out += experiment_manifests("%s-%d" % (prefix, i))
    return out


TOOLS = ("baseline", "ours", "module", "kubectl", "k8s-list", "k8s-task", "exp-engine", "exp-module", "exp-before")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS))
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="oforest-bench-"))
    kubeconfig = os.environ.get("OFOREST_KUBECONFIG")
    controlplane = None
    os.environ.setdefault("KUBECTL", str(binaries() / "kubectl"))
    if kubeconfig:
        where = "the cluster of OFOREST_KUBECONFIG (%s)" % kubeconfig
    else:
        controlplane = ControlPlane(binaries(), workdir / "controlplane").start()
        kubeconfig = str(controlplane.kubeconfig)
        where = "a REAL Kubernetes control plane (tests/k8s/controlplane.py)"
    try:
        run_sizes(args, kubeconfig, workdir, where)
    finally:
        if controlplane:
            controlplane.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # its CA key and admin token included


def delete_namespaces(kubeconfig, prefix, wait=0):
    """Delete the benchmark's namespaces; with `wait`, until they are gone (their Services' addresses
    are free again: the control plane's service range holds about 250, two per experiment)."""
    client = make_client(kubeconfig)

    def ours():
        return [ns["metadata"]["name"] for ns in client.request("GET", "/api/v1/namespaces")[1]["items"]
                if ns["metadata"]["name"].startswith((prefix, "otree-" + prefix))]  # the renderer's otree-<name>
    for name in ours():
        client.request("DELETE", "/api/v1/namespaces/%s" % name)
    deadline = time.time() + wait
    while wait and ours() and time.time() < deadline:
        time.sleep(1)


def run_sizes(args, kubeconfig, workdir, where):
    version = make_client(kubeconfig).request("GET", "/version")[1]["gitVersion"]
    tools = args.tools.split(",")
    run_id = uuid.uuid4().hex[:4]
    print("k8s_apply benchmark on %s, Kubernetes %s; no-op = median of %d re-applies\n" % (
        where, version, args.repeat))
    print("%-5s %-9s %9s %7s %8s | %9s %7s %8s | %8s | %s" % (
        "exps", "tool", "first s", "reqs", "changed", "no-op s", "reqs", "changed", "vs base",
        "task s (no-op, without ansible start-up)"))
    for size in [int(s) for s in args.sizes.split(",")]:
        rows = {}
        for tool in tools:
            if tool == "k8s-task" and size > 10:
                continue
            prefix = "bench-%s-%d-%s" % (run_id, size, tool.replace("-", ""))
            # the exp-* tools take experiments (our renderer makes about 13 objects of each), the others manifests
            manifests = specs(size, prefix) if tool.startswith("exp-") else experiments(size, prefix)
            state = {}
            runs = {
                "baseline": lambda: baseline(manifests, kubeconfig, state),
                "ours": lambda: ours(manifests, kubeconfig),
                "kubectl": lambda: kubectl(manifests, kubeconfig, workdir),
                "exp-engine": lambda: exp_engine(manifests, kubeconfig),
            }
            run = runs.get(tool) or (lambda t=tool: playbook(t, manifests, kubeconfig, workdir))

            def timed():
                t0 = time.perf_counter()
                reqs, changed = run()
                return time.perf_counter() - t0, reqs, changed
            first = timed()
            time.sleep(1.1)  # a later second, as between two real runs
            noops = []
            for _ in range(args.repeat):
                noops.append(timed())
                time.sleep(1.1)
            noop = sorted(noops)[len(noops) // 2]
            rows[tool] = (first, noop, TASK_SECONDS.get(tool))
            if tool.startswith("exp-"):
                delete_namespaces(kubeconfig, prefix, wait=300)
        delete_namespaces(kubeconfig, "bench-%s-%d-" % (run_id, size))
        base = rows.get("baseline", (None, (None,)))[1][0]
        for tool, (first, noop, task) in rows.items():
            ratio = "%7.2fx" % (base / noop[0]) if base else "      -"
            print("%-5d %-9s %9.3f %7s %8d | %9.3f %7s %8d | %8s | %s" % (
                (size, tool) + first + noop + (ratio, "%.2f" % task if task is not None else "")))
        print("      (%d objects per run)" % (13 * size))
        before = rows.get("exp-before")
        if before and "exp-module" in rows:
            print("      otree_experiments vs the role's former tasks, no-op: %.1fx wall, %.1fx task time" % (
                before[1][0] / rows["exp-module"][1][0], before[2] / rows["exp-module"][2]))
    print("\n'vs base' = baseline no-op time / this tool's no-op time (higher is faster).")
    print("'changed' = objects the tool reported changed (kubectl reports every object as applied;")
    print("ansible tasks report per task, per item for the loop). 'reqs' = requests counted by our client")
    print("('-' for tools whose requests we do not see).")


if __name__ == "__main__":
    main()
