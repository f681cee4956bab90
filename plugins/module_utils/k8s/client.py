# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One API client per invocation (the kubernetes library's configuration loading and REST client),
its requests counted, and API errors turned into K8sError.
Must run on Python 3.8 (Ubuntu 20.04 targets).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

try:
    from kubernetes import client as k8s_client, config as k8s_config
    from kubernetes.client.rest import ApiException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = e

from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import K8sError


class Client:
    """One kubernetes ApiClient per invocation, with the requests counted."""

    def __init__(self, kubeconfig=None, kubeconfig_content=None, context=None, in_cluster=False,
                 host=None, api_key=None, validate_certs=True, ca_cert=None, pool_size=16):
        if not HAS_KUBERNETES:
            raise K8sError("the Python library 'kubernetes' is required on the host that runs this module "
                           "(pip install kubernetes): %s" % KUBERNETES_IMPORT_ERROR)
        configuration = k8s_client.Configuration()
        try:
            if in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
            elif kubeconfig_content:
                k8s_config.load_kube_config_from_dict(kubeconfig_content, context=context,
                                                      client_configuration=configuration)
            elif host:
                configuration.host = host
            else:
                k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                            client_configuration=configuration)
        except Exception as e:  # the library raises several types for an unusable kubeconfig
            raise K8sError("cannot load the Kubernetes credentials (%s): %s" % (
                "in-cluster service account" if in_cluster else "kubeconfig %s" % (kubeconfig or "default"), e))
        if host:
            configuration.host = host
        if api_key:
            configuration.api_key = {"authorization": "Bearer " + api_key}
        if ca_cert:
            configuration.ssl_ca_cert = ca_cert
        if not validate_certs:
            configuration.verify_ssl = False
        configuration.connection_pool_maxsize = pool_size
        self.host = configuration.host
        self.api = k8s_client.ApiClient(configuration)
        self.requests = 0

    def request(self, method, path, query=None, body=None, content_type=None):
        self.requests += 1
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            if hasattr(self.api, "param_serialize"):  # kubernetes >= 35 (openapi-generator 7)
                serialized = self.api.param_serialize(
                    method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
                    auth_settings=["BearerToken"])
                response = self.api.call_api(*serialized)
                status, raw = response.status, response.read()
            else:  # older clients (e.g. on a managed host)
                response = self.api.call_api(
                    path, method, query_params=list((query or {}).items()), header_params=headers, body=body,
                    auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=False)
                status, raw = response[1], response[0].data
        except ApiException as e:
            raise api_error(e.status, e.body, method, path)
        except Exception as e:  # urllib3 connection errors
            raise K8sError("cannot reach the Kubernetes API server at %s: %s. Check the kubeconfig's server "
                           "address and that the cluster is running." % (self.host, e))
        if status >= 400:
            raise api_error(status, raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw, method, path)
        return status, json.loads(raw) if raw else {}


def api_error(status, body, method, path):
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"message": (body or "").strip()}
    if not isinstance(data, dict):
        data = {"message": str(data)}
    message = data.get("message") or "HTTP %s" % status
    return K8sError(message, status=status, obj=data)


# The connection options every cluster module takes (documented once: doc fragment oforest.otree.k8s_auth).
CONNECTION_ARGS = dict(
    kubeconfig=dict(type="raw", no_log=True),
    context=dict(type="str"),
    in_cluster=dict(type="bool", default=False),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
    ca_cert=dict(type="path"),
)
CONNECTION_EXCLUSIVE = [("in_cluster", "kubeconfig")]


def client_from_params(params, pool_size=16, environ=None):
    """A Client for a module's connection options; the kubeconfig defaults to K8S_AUTH_KUBECONFIG, then
    the kubernetes library's own default (KUBECONFIG, then ~/.kube/config)."""
    import os
    kubeconfig = params.get("kubeconfig")
    if kubeconfig is not None and not isinstance(kubeconfig, (str, dict)):
        raise K8sError("kubeconfig: expected a file path or a kubeconfig mapping, got %s" % type(kubeconfig).__name__)
    path = kubeconfig if isinstance(kubeconfig, str) else None
    if kubeconfig is None and not params.get("in_cluster") and not params.get("host"):
        path = (os.environ if environ is None else environ).get("K8S_AUTH_KUBECONFIG")
    return Client(kubeconfig=os.path.expanduser(path) if path else None,
                  kubeconfig_content=kubeconfig if isinstance(kubeconfig, dict) else None,
                  context=params.get("context"), in_cluster=params.get("in_cluster", False), host=params.get("host"),
                  api_key=params.get("api_key"), validate_certs=params.get("validate_certs", True),
                  ca_cert=params.get("ca_cert"), pool_size=pool_size)
