# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How the collection's Kubernetes modules find and authenticate to the API server."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a mapping.
      - Default is C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG), then C(~/.kube/config).
    type: raw
  context:
    description: The kubeconfig context to use. Default is the kubeconfig's current context.
    type: str
  in_cluster:
    description: Use the pod's service account (when the module runs inside the cluster, e.g. in a CI job).
    type: bool
    default: false
  host:
    description: The API server URL, overriding the kubeconfig's (with O(api_key) for token authentication).
    type: str
  api_key:
    description: A bearer token for the API server.
    type: str
  validate_certs:
    description: Verify the API server's TLS certificate.
    type: bool
    default: true
    aliases: [verify_ssl]
  ca_cert:
    description: Path to a CA certificate that signs the API server's certificate.
    type: path
requirements:
  - kubernetes (Python library) on the host that runs the module
"""
