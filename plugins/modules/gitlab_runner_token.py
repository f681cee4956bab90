#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gitlab_runner_token
short_description: Find or create a GitLab runner and return its runner authentication token (glrt-)
version_added: 0.1.0
description:
  - Creates a runner through GitLab's REST API with a personal, group or project access token that has the
    C(create_runner) scope (C(POST /api/v4/user/runners)), the flow GitLab recommends since 16.0, and returns
    its runner authentication token (C(glrt-...)).
  - "Idempotent: the runner is identified by its O(description) within its scope (instance, group or project).
    A re-run finds it instead of creating a duplicate, corrects tags, run-untagged, locked, paused, access level
    and maximum timeout in place, and keeps the known token O(runner_token) when GitLab still accepts it
    (C(POST /runners/verify)). A runner found without a valid known token gets a new token
    (C(reset_authentication_token)); O(rotate=true) always does that."
  - Without O(api_token), a runner token made in GitLab's UI (O(runner_token)) is verified and returned.
  - Legacy registration tokens (O(registration_token)) are accepted with a deprecation warning; GitLab disabled
    them by default in 17.0 and removes them in 20.0.
  - O(state=absent) deletes the runner(s) with this description in the scope.
extends_documentation_fragment:
  - oforest.otree.attributes
author:
  - oforest.otree developers (@oforest)
options:
  gitlab_url:
    description: GitLab's base URL, for example C(https://gitlab.example.org).
    type: str
    required: true
  api_token:
    description:
      - Access token with the scopes C(read_api) (to look up the project or group and list its runners),
        C(create_runner) (to create the runner) and C(manage_runner) (to update, rotate and delete it), or C(api)
        instead of all three; GitLab lets no scope stand in for another. Its user needs the Maintainer role on
        the project, the Owner role on the group or administrator rights for instance runners.
    type: str
  runner_type:
    description: The runner's scope.
    type: str
    choices: [instance_type, group_type, project_type]
    default: project_type
  group:
    description: Group ID or full path (required with O(api_token) for O(runner_type=group_type)).
    type: str
  project:
    description:
      - Project ID or full path, for example C(lab/public-goods) (required with O(api_token) for
        O(runner_type=project_type)).
    type: str
  description:
    description: The runner's description; it identifies the runner within its scope.
    type: str
    required: true
  tags:
    description: The runner's tags (jobs select runners by tags).
    type: list
    elements: str
    default: []
  run_untagged:
    description: The runner also takes jobs without tags.
    type: bool
    default: true
  locked:
    description: The (project) runner cannot be enabled for other projects.
    type: bool
    default: true
  paused:
    description: The runner takes no new jobs.
    type: bool
    default: false
  access_level:
    description: C(ref_protected) runs only jobs of protected branches and tags.
    type: str
    choices: [not_protected, ref_protected]
    default: not_protected
  maximum_timeout:
    description: Maximum job timeout in seconds (at least 600); 0 = GitLab's default.
    type: int
    default: 0
  runner_token:
    description:
      - A runner authentication token already known (from the UI, or the one stored by an earlier run). Kept
        while GitLab accepts it.
    type: str
  registration_token:
    description: Legacy registration token (deprecated by GitLab; disabled by default since 17.0).
    type: str
  rotate:
    description: Give the runner a new authentication token (the old one stops working).
    type: bool
    default: false
  registry_required:
    description:
      - For a project runner, stop before anything is created or changed when GitLab shows no container
        registry path for the project (RV(registry_image) would be null), naming what to give instead.
    type: bool
    default: false
  state:
    description: C(present) to find or create, C(absent) to delete.
    type: str
    choices: [present, absent]
    default: present
  validate_certs:
    description: Verify GitLab's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds per request.
    type: int
    default: 30
notes:
  - "A new token (RV(token)) is a secret: register the result with C(no_log=true) on the task."
  - In check mode a runner that would be created has no token yet (RV(token) is null).
  - The token to store is O(runner_token) when RV(action=kept), else RV(token).
"""

EXAMPLES = r"""
- name: A project runner for the experiment's repository
  oforest.otree.gitlab_runner_token:
    gitlab_url: https://gitlab.example.org
    api_token: "{{ vault_gitlab_create_runner_token }}"
    project: lab/public-goods
    description: otree-public-goods (k8s.experiments.example.org)
    tags: [otree, kubernetes]
    runner_token: "{{ existing_token | default(omit) }}"   # keep the token stored by the last run
  register: runner
  no_log: true

- name: The token to store (the known one, or the new one)
  ansible.builtin.set_fact:
    runner_token: "{{ runner.token or existing_token }}"
  no_log: true

- name: A token made in GitLab's UI (Settings > CI/CD > Runners > New project runner)
  oforest.otree.gitlab_runner_token:
    gitlab_url: https://gitlab.example.org
    description: otree-public-goods
    runner_token: "{{ vault_runner_token }}"
  register: runner
  no_log: true

- name: A new token for the runner (the old one stops working)
  oforest.otree.gitlab_runner_token:
    gitlab_url: https://gitlab.example.org
    api_token: "{{ vault_gitlab_create_runner_token }}"
    project: lab/public-goods
    description: otree-public-goods (k8s.experiments.example.org)
    rotate: true
  register: runner
  no_log: true
"""

RETURN = r"""
token:
  description:
    - The runner's new authentication token when this run created, registered or rotated it; null when the
      known O(runner_token) is still valid (keep using it; Ansible masks values of no_log options in results,
      so the module does not echo it) and in check mode.
  returned: state=present
  type: str
  sample: glrt-XXXXXXXXXXXXXXXXXXXX
runner:
  description: The runner as GitLab describes it (no token).
  returned: success
  type: dict
  sample: {id: 42, description: otree-public-goods, runner_type: project_type, tag_list: [otree], locked: true}
registry_image:
  description:
    - The project's container registry path as GitLab gives it (C(container_registry_image_prefix) of
      C(GET /projects/:id), the C($CI_REGISTRY_IMAGE) its pipelines push to); null when GitLab shows none (no
      container registry on the instance, or the token's user may not read the project's images).
  returned: runner_type=project_type with api_token
  type: str
  sample: registry.gitlab.example.org/lab/public-goods
action:
  description: What happened, one of created, updated, rotated, kept, registered, deleted, absent.
  returned: always
  type: str
  sample: kept
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oforest.otree.plugins.module_utils.errors import reported
from ansible_collections.oforest.otree.plugins.module_utils.gitlab import (
    GitLab, attr_diff, desired_attrs)


def run(module, gl, project=None):
    p = module.params
    check = module.check_mode
    want = desired_attrs(p)
    if not p["api_token"]:
        return without_api_token(module, gl, want)

    rtype = p["runner_type"]
    scope_id = None
    if rtype == "group_type":
        scope_id = gl.namespace_id("group", p["group"])
    elif rtype == "project_type":
        scope_id = project["id"]
        if p["registry_required"] and p["state"] == "present" and not project.get("container_registry_image_prefix"):
            module.fail_json(msg="project: GitLab shows no container registry path for %s (no registry on the "
                             "instance, or the token's user may not read the project's images); give the path the "
                             "pipeline pushes to yourself (gitlab_runner role: image_repository)." % p["project"])
    found = [r for r in gl.list_runners(rtype, scope_id) if r.get("description") == p["description"]]
    if rtype == "project_type":
        found = owned_by(gl, found, scope_id)

    if p["state"] == "absent":
        if not found:
            return dict(changed=False, action="absent")
        if not check:
            for r in found:
                gl.delete(r["id"])
        return dict(changed=True, action="deleted", runner=found[0],
                    diff=dict(before={"runners": [r["id"] for r in found]}, after={"runners": []}))

    if len(found) > 1:
        module.fail_json(msg="description: %d runners are called %r in this %s (ids %s); delete the extra ones in "
                         "GitLab or choose another description." % (
                             len(found), p["description"], rtype.replace("_type", ""),
                             ", ".join(str(r["id"]) for r in found)))
    if not found:
        if check:
            return dict(changed=True, action="created", token=None, runner=dict(want, runner_type=rtype),
                        diff=dict(before={}, after=want))
        created = gl.create(rtype, scope_id, _clean(want))
        runner = gl.runner(created["id"])
        return dict(changed=True, action="created", token=created["token"], runner=runner,
                    diff=dict(before={}, after=want))

    runner = gl.runner(found[0]["id"])
    current = dict((k, runner.get(k)) for k in want)
    changes = attr_diff(current, want)
    result = dict(changed=False, action="kept", runner=runner, token=None,
                  diff=dict(before=current, after=dict(current, **changes)))
    if changes:
        result.update(changed=True, action="updated")
        if not check:
            runner = gl.update(runner["id"], _clean(changes)) or runner
            result["runner"] = runner
    reason = None
    if p["rotate"]:
        reason = "rotate"
    elif not p["runner_token"]:
        reason = "no token known"
    elif not gl.verify(p["runner_token"]):
        reason = "the known token is no longer valid"
    if reason:
        result.update(changed=True, action="rotated", token=None, rotated_because=reason)
        if not check:
            result["token"] = gl.reset_token(runner["id"])["token"]
    return result


def owned_by(gl, listed, project_id):
    """GitLab lists a project's runners together with runners of other projects enabled on it: keep the
    ones this project owns (the first of the runner's projects), never touch another project's runner."""
    owned = []
    for r in listed:
        projects = gl.runner(r["id"]).get("projects") or []
        if projects and projects[0].get("id") == project_id:
            owned.append(r)
    return owned


def without_api_token(module, gl, want):
    p = module.params
    if p["state"] == "absent":
        module.fail_json(msg="api_token: deleting a runner needs an access token (scopes read_api and manage_runner).")
    if p["rotate"]:
        module.fail_json(msg="api_token: rotating a runner's token needs an access token (scopes read_api and manage_runner).")
    if p["runner_token"]:
        if gl.verify(p["runner_token"]):
            return dict(changed=False, action="kept", token=None, runner={"description": p["description"]})
        if not p["registration_token"]:
            module.fail_json(msg="runner_token: GitLab does not accept this runner token (POST /runners/verify refused "
                             "it): it was deleted or rotated. Make a new runner in GitLab (Settings > CI/CD > "
                             "Runners) or give api_token so the module can make one.")
    module.deprecate("registration_token: runner registration tokens are deprecated by GitLab (disabled by default "
                     "since 17.0, removed in 20.0); give api_token (scopes read_api, create_runner, manage_runner) or a runner_token instead.",
                     version="2.0.0", collection_name="oforest.otree")
    if module.check_mode:
        return dict(changed=True, action="registered", token=None, runner={"description": p["description"]})
    legacy = dict(_clean(want))
    legacy.pop("paused", None)
    created = gl.register_legacy(p["registration_token"], legacy)
    return dict(changed=True, action="registered", token=created["token"],
                runner={"id": created["id"], "description": p["description"]})


def _clean(attrs):
    out = dict(attrs)
    if not out.get("maximum_timeout"):
        out.pop("maximum_timeout", None)
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gitlab_url=dict(type="str", required=True),
            api_token=dict(type="str", no_log=True),
            runner_type=dict(type="str", default="project_type", choices=["instance_type", "group_type", "project_type"]),
            group=dict(type="str"),
            project=dict(type="str"),
            description=dict(type="str", required=True),
            tags=dict(type="list", elements="str", default=[]),
            run_untagged=dict(type="bool", default=True),
            locked=dict(type="bool", default=True),
            paused=dict(type="bool", default=False),
            access_level=dict(type="str", default="not_protected", choices=["not_protected", "ref_protected"]),
            maximum_timeout=dict(type="int", default=0),
            runner_token=dict(type="str", no_log=True),
            registration_token=dict(type="str", no_log=True),
            rotate=dict(type="bool", default=False, no_log=False),
            registry_required=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["gitlab_url"].startswith(("https://", "http://")):
        module.fail_json(msg="gitlab_url: %r is not a URL; give GitLab's address like https://gitlab.example.org."
                         % p["gitlab_url"])
    if not (p["api_token"] or p["runner_token"] or p["registration_token"]):
        module.fail_json(msg="api_token: give an access token with the scopes read_api, create_runner and "
                         "manage_runner (or a runner_token made in GitLab's UI).")
    if p["api_token"] and p["runner_type"] == "project_type" and not p["project"]:
        module.fail_json(msg="project: a project runner needs its project (ID or full path, e.g. lab/public-goods).")
    if p["api_token"] and p["runner_type"] == "group_type" and not p["group"]:
        module.fail_json(msg="group: a group runner needs its group (ID or full path, e.g. lab).")
    if p["runner_token"] and not p["runner_token"].startswith("glrt-"):
        module.fail_json(msg="runner_token: a runner authentication token starts with glrt- (this looks like another "
                         "kind of token: a registration token goes into registration_token, an access token into "
                         "api_token).")
    if p["maximum_timeout"] and p["maximum_timeout"] < 600:
        module.fail_json(msg="maximum_timeout: GitLab needs at least 600 seconds (or 0 for its default).")
    for tag in p["tags"]:
        if not tag or "," in tag:
            module.fail_json(msg="tags: %r is not a valid tag (no empty tags, no commas)." % tag)
    gl = GitLab(p["gitlab_url"], p["api_token"], validate_certs=p["validate_certs"], timeout=p["timeout"])
    with reported(module, "gitlab_runner_token"):
        project = gl.project(p["project"]) if p["api_token"] and p["runner_type"] == "project_type" else None
        result = run(module, gl, project)
    if project is not None:
        result["registry_image"] = project.get("container_registry_image_prefix") or None
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
