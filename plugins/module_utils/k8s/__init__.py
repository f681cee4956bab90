# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's Kubernetes layer (client -> engine -> waits):

- common: labels, the kinds known without discovery, merge keys, K8sError;
- fields: quantities, normalised objects, server-side apply field sets, redaction;
- client: one API client per invocation and the connection options every cluster module takes;
- engine: the server-side apply engine (plan, apply, prune);
- waits: rollouts, Jobs and CRDs.

Why not kubernetes.core's client (its DynamicClient): the engine sends server-side apply PATCHes
concurrently from a thread pool, reads the live objects with one LIST per kind filtered by our owner
label, and takes the kinds it applies from a table without API discovery; kubernetes.core.k8s applies
a list's objects one after the other. On the real API server a no-op task with 50 experiments took
9.7 s with kubernetes.core.k8s and 1.6 s with ours (docs/testing.md, Benchmarks). We use the same kubernetes
library for configuration loading and transport, and take the same connection options (kubeconfig
path or mapping, context, in_cluster, host, api_key, validate_certs, ca_cert).
"""
