# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the Kubernetes layer shares: the labels it writes, the kinds it knows without
discovery, the merge keys of the lists it compares, and its one error type.
Must run on Python 3.8 (Ubuntu 20.04 targets).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.oforest.otree.plugins.module_utils.errors import CollectionError

OWNER_LABEL = "oforest.otree/owner"
GENERATED_ANNOTATION = "oforest.otree/generated"

# apiVersion, kind -> (plural, namespaced): the kinds the collection applies, without discovery.
KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
}
FIRST_KINDS = ("CustomResourceDefinition", "Namespace")
PROTECTED_KINDS = ("PersistentVolumeClaim", "Namespace")
ASSOCIATIVE = {"containers": ("name",), "initContainers": ("name",), "env": ("name",), "volumes": ("name",),
               "volumeMounts": ("mountPath",), "imagePullSecrets": ("name",)}
# Maps the API marks x-kubernetes-map-type: atomic (owned as a whole; seen in the recorded FieldsV1).
ATOMIC_MAPS = ("selector", "podSelector", "namespaceSelector", "secretKeyRef", "configMapKeyRef", "fieldRef",
               "resourceFieldRef", "roleRef")
IGNORED_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink")


class K8sError(CollectionError):
    """An error with a message that says what to fix (`obj`: the API's Status, when it sent one)."""

    def __init__(self, message, status=None, obj=None):
        super(K8sError, self).__init__(message, status=status)
        self.obj = obj


def describe(obj):
    meta = obj.get("metadata") or {}
    where = "%s/" % meta["namespace"] if meta.get("namespace") else ""
    return "%s %s%s" % (obj.get("kind"), where, meta.get("name"))
