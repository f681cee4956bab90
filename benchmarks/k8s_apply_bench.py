#!/usr/bin/env python3
"""Side-by-side benchmark of k8s_apply's engine against the serial baseline.

Same API server, same manifests (one oTree experiment = the 13 objects of the recorded transcript,
replicated into 1, 10 and 50 namespaces), run one after the other:
  ours      the k8s_apply engine, one call for the whole list
  baseline  a plain serial loop, one server-side-apply PATCH per object with the `kubernetes`
            client (the serial limit); it reports "changed" when resourceVersion moved, as a naive
            client does
For each: first apply and no-op re-apply, wall time, HTTP requests, objects reported changed.
The API server is the STAND-IN (tests/k8s_standin) unless OFOREST_KUBECONFIG names a real cluster.
Usage: benchmarks/k8s_apply_bench.py [--sizes 1,10,50] [--repeat 3]
"""
import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from tests.integration.conftest import experiment_manifests  # noqa: E402
from tests.k8s_standin.server import ADMIN_TOKEN, start_background  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s_apply import (  # noqa: E402
    Client, Engine, KINDS, normalize)


def make_client(url, kubeconfig):
    return Client(kubeconfig=kubeconfig) if kubeconfig else Client(host=url, api_key=ADMIN_TOKEN)


def ours(manifests, url, kubeconfig):
    client = make_client(url, kubeconfig)
    results = Engine(client).run(manifests)
    return client.requests, sum(r["action"] != "unchanged" for r in results)


def baseline(manifests, url, kubeconfig, state):
    client = make_client(url, kubeconfig)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    kubeconfig = os.environ.get("OFOREST_KUBECONFIG")
    server = None
    if kubeconfig:
        url, where = None, "real cluster (%s)" % kubeconfig
    else:
        server, url = start_background(kubelet=True)
        where = "STAND-IN API server (tests/k8s_standin)"
    print("k8s_apply benchmark on %s, median of %d no-op re-applies\n" % (where, args.repeat))
    print("%-5s %-9s %10s %8s %8s %12s %8s %8s %9s" % (
        "exps", "tool", "first s", "reqs", "changed", "no-op s", "reqs", "changed", "vs base"))
    for size in [int(s) for s in args.sizes.split(",")]:
        rows = {}
        for tool in ("baseline", "ours"):
            manifests = experiments(size, "bench-%s-%s" % (tool, uuid.uuid4().hex[:4]))
            state = {}
            run = (lambda: ours(manifests, url, kubeconfig)) if tool == "ours" else \
                (lambda: baseline(manifests, url, kubeconfig, state))
            t0 = time.perf_counter()
            first_reqs, first_changed = run()
            first = time.perf_counter() - t0
            time.sleep(1.1)  # a later second, as between two real runs
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                noop_reqs, noop_changed = run()
                times.append(time.perf_counter() - t0)
            rows[tool] = (first, first_reqs, first_changed, statistics.median(times), noop_reqs, noop_changed)
        for tool in ("baseline", "ours"):
            first, fr, fc, noop, nr, nc = rows[tool]
            ratio = rows["baseline"][3] / noop if noop else float("inf")
            print("%-5d %-9s %10.3f %8d %8d %12.3f %8d %8d %8.2fx" % (size, tool, first, fr, fc, noop, nr, nc, ratio))
        print("      objects: %d per run" % (13 * size))
    print("\n'vs base' = baseline no-op time / this tool's no-op time (higher is faster).")
    print("kubectl apply --server-side and kubernetes.core.k8s are not run here yet (see README).")
    if server:
        server.shutdown()


if __name__ == "__main__":
    main()
