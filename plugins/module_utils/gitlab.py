# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for GitLab's REST API (v4) runner endpoints, over Ansible's URL helpers.

Only what the runner lifecycle needs: create a runner (POST /user/runners, runner authentication
tokens), list a scope's runners, read, update, verify, reset the token, delete, and the legacy
registration (POST /runners with a registration token). Errors become GitLabError with a message a
lab admin can act on (which token, which scope, which group or project).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url
from ansible_collections.oforest.otree.plugins.module_utils.errors import CollectionError

RUNNER_TYPES = ("instance_type", "group_type", "project_type")
# What an access token needs for the whole runner lifecycle (GitLab registers no scope as implying
# another): read_api to look up the project or group and list its runners (GET requests), create_runner
# for POST /user/runners, manage_runner for /runners/:id (update, reset the token, delete).
TOKEN_SCOPES = ("read_api", "create_runner", "manage_runner")
# POST /runners/verify ensures a runner manager under this system_id (one, reused by every check) instead
# of the "<legacy>" manager GitLab makes when a call sends none.
VERIFY_SYSTEM_ID = "oforest-otree-token-check"
UPDATABLE = ("description", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout")


class GitLabError(CollectionError):
    """GitLab refused or could not be reached; the message says what to fix (`status`: GitLab's HTTP status)."""

    def __init__(self, message, status=None):
        super(GitLabError, self).__init__(message, status=status)


class GitLab(object):
    def __init__(self, url, token=None, validate_certs=True, timeout=30, opener=None):
        self.base = url.rstrip("/") + "/api/v4"
        self.token = token
        self.validate_certs = validate_certs
        self.timeout = timeout
        self._open = opener or open_url

    # -- transport
    def request(self, method, path, data=None, query=None, auth=True, what=None):
        url = self.base + path
        if query:
            url += "?" + urlencode(query, doseq=True)
        headers = {"Accept": "application/json"}
        body = None
        if data is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(data)
        if auth and self.token:
            headers["PRIVATE-TOKEN"] = self.token
        try:
            resp = self._open(url, method=method, data=body, headers=headers,
                              validate_certs=self.validate_certs, timeout=self.timeout)
            raw = resp.read()
            return json.loads(raw) if raw else None
        except HTTPError as e:
            try:
                payload = json.loads(e.read() or b"{}")
            except ValueError:
                payload = {}
            raise GitLabError(self._explain(e.code, payload, what or "%s %s" % (method, path)), e.code)
        except URLError as e:
            raise GitLabError("Cannot reach GitLab at %s: %s (check gitlab_url and the network)"
                              % (self.base[:-len("/api/v4")], e.reason))

    @staticmethod
    def _explain(code, payload, what):
        detail = payload.get("message") or payload.get("error_description") or payload.get("error") or ""
        if isinstance(detail, dict):
            detail = "; ".join("%s %s" % (k, ", ".join(v) if isinstance(v, list) else v) for k, v in detail.items())
        if code == 401:
            return ("GitLab refused the access token (401) for %s: it is wrong, expired or revoked. Make a "
                    "personal access token with the scopes %s (Preferences > Access tokens)."
                    % (what, ", ".join(TOKEN_SCOPES)))
        if code == 403:
            if payload.get("error") == "insufficient_scope":
                return ("The access token lacks the scope needed for %s (403 insufficient_scope; GitLab accepts %s "
                        "there): give the token the scopes %s (or api)." % (
                            what, payload.get("scope") or "another scope", ", ".join(TOKEN_SCOPES)))
            return ("GitLab forbids %s (403%s): the token's user needs the Maintainer role on the project or the "
                    "Owner role on the group (administrator for instance runners)."
                    % (what, (": " + detail) if detail else ""))
        if code == 404:
            return "GitLab found nothing for %s (404%s): check the group or project path and that the token's user " \
                   "can see it." % (what, (": " + detail) if detail else "")
        if code == 410:
            return ("GitLab has runner registration tokens disabled (410) for %s: create the runner with an access "
                    "token (api_token, scopes %s) instead." % (what, ", ".join(TOKEN_SCOPES)))
        return "GitLab answered %s for %s%s" % (code, what, (": " + detail) if detail else "")

    # -- lookups
    def namespace_id(self, kind, ref):
        """The numeric ID of a group or project given as ID or full path."""
        if isinstance(ref, int) or str(ref).isdigit():
            return int(ref)
        plural = "groups" if kind == "group" else "projects"
        obj = self.request("GET", "/%s/%s" % (plural, quote(str(ref), safe="")), what="%s %s" % (kind, ref))
        return obj["id"]

    def project(self, ref):
        """The project as GitLab shows it (id, path_with_namespace, container_registry_image_prefix, ...)."""
        return self.request("GET", "/projects/%s" % quote(str(ref), safe=""), what="project %s" % ref)

    def list_runners(self, runner_type, scope_id=None):
        if runner_type == "group_type":
            path = "/groups/%d/runners" % scope_id
        elif runner_type == "project_type":
            path = "/projects/%d/runners" % scope_id
        else:
            path = "/runners/all"
        out, page = [], 1
        while True:
            batch = self.request("GET", path, query={"type": runner_type, "per_page": 100, "page": page},
                                 what="listing %s runners" % runner_type.replace("_type", ""))
            out.extend(batch or [])
            if not batch or len(batch) < 100:
                return out
            page += 1

    def runner(self, runner_id):
        return self.request("GET", "/runners/%d" % runner_id, what="runner %d" % runner_id)

    # -- changes
    def create(self, runner_type, scope_id, attrs):
        data = dict(attrs, runner_type=runner_type)
        if runner_type == "group_type":
            data["group_id"] = scope_id
        elif runner_type == "project_type":
            data["project_id"] = scope_id
        return self.request("POST", "/user/runners", data=data, what="creating a %s runner" % runner_type)

    def update(self, runner_id, attrs):
        return self.request("PUT", "/runners/%d" % runner_id, data=attrs, what="updating runner %d" % runner_id)

    def reset_token(self, runner_id):
        return self.request("POST", "/runners/%d/reset_authentication_token" % runner_id,
                            what="resetting runner %d's token" % runner_id)

    def verify(self, token):
        """True when the runner authentication token is valid (POST /runners/verify, runner auth)."""
        try:
            self.request("POST", "/runners/verify", data={"token": token, "system_id": VERIFY_SYSTEM_ID}, auth=False,
                         what="verifying a runner token")
            return True
        except GitLabError as e:
            if e.status == 403:
                return False
            raise

    def delete(self, runner_id):
        self.request("DELETE", "/runners/%d" % runner_id, what="deleting runner %d" % runner_id)

    def register_legacy(self, registration_token, attrs):
        data = dict(attrs, token=registration_token)
        return self.request("POST", "/runners", data=data, auth=False, what="registering with a registration token")


def desired_attrs(params):
    """The runner attributes the module manages, in GitLab's field names."""
    return {
        "description": params["description"],
        "tag_list": sorted(params["tags"]),
        "run_untagged": params["run_untagged"],
        "locked": params["locked"],
        "paused": params["paused"],
        "access_level": params["access_level"],
        "maximum_timeout": params["maximum_timeout"],
    }


def attr_diff(current, desired):
    """Fields whose GitLab value differs from the desired one (tags compared as sets)."""
    changed = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "tag_list":
            if sorted(have or []) != sorted(want):
                changed[key] = want
        elif key == "maximum_timeout":
            if (have or None) != (want or None):
                changed[key] = want
        elif have != want:
            changed[key] = want
    return changed
