# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting: a rollout (Deployment, StatefulSet) or a Job read from its status.
Must run on Python 3.8 (Ubuntu 20.04 targets).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import K8sError, describe


def rollout_done(obj):
    """(done, reason) for a Deployment, StatefulSet or Job, read from its status."""
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    if kind == "Job":
        for c in status.get("conditions") or []:
            if c.get("type") == "Complete" and c.get("status") == "True":
                return True, "complete"
            if c.get("type") == "Failed" and c.get("status") == "True":
                return False, "failed: %s" % c.get("message")
        return False, "job still running"
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not seen the new spec yet"
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return False, "failed: %s" % c.get("message")
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return False, "failed: %s" % c.get("message")
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    # Counts the server omits are 0 (11-rollout-status: no readyReplicas field at all).
    if status.get("updatedReplicas", 0) < replicas:
        return False, "%d of %d replicas updated" % (status.get("updatedReplicas", 0), replicas)
    ready_field = "availableReplicas" if kind == "Deployment" else "readyReplicas"
    if status.get(ready_field, 0) < replicas:
        return False, "%d of %d replicas available (pods not ready: check the image, probes and `kubectl describe pod`)" \
            % (status.get(ready_field, 0), replicas)
    return True, "ready"


def wait_established(engine, obj, timeout):
    """Wait until a CRD the engine created is Established."""
    path = engine.path(obj["apiVersion"], "customresourcedefinitions", False, None, obj["metadata"]["name"])
    deadline = time.time() + timeout
    while True:
        dummy_status, crd = engine.client.request("GET", path)
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if time.time() > deadline:
            raise K8sError("%s is not Established after %ss" % (describe(obj), timeout))
        time.sleep(0.2)


def wait_rolled_out(engine, items, timeout):
    """Wait until every Deployment and StatefulSet has rolled out and every Job completed."""
    deadline = time.time() + timeout
    for obj in items:
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        plural, namespaced = engine.resource(obj["apiVersion"], obj["kind"])
        path = engine.path(obj["apiVersion"], plural, namespaced, obj["metadata"].get("namespace"),
                           obj["metadata"]["name"])
        while True:
            dummy_status, current = engine.client.request("GET", path)
            done, why = rollout_done(current)
            if done:
                break
            if why.startswith("failed") or time.time() > deadline:
                raise K8sError("%s did not become ready within %ss: %s" % (describe(obj), timeout, why))
            time.sleep(1)
