#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: microk8s_addons
short_description: Enable (and optionally disable) MicroK8s addons, one at a time
version_added: 0.1.0
description:
  - Reads C(microk8s status --format yaml --wait-ready), enables only the addons of O(addons) that are
    disabled, one after the other with C(microk8s status --wait-ready) in between (MicroK8s refuses
    concurrent enables with "change in progress"), and with O(disable_unlisted) disables enabled
    addons that are not listed.
  - After each change it waits until C(microk8s status) shows the addon in its new state, because
    MicroK8s judges an addon by objects that controllers create a little after C(microk8s enable)
    returns (C(pod/coredns) for dns), and a re-run must not enable it again.
  - Calls MicroK8s by absolute path (sudo's PATH lacks C(/snap/bin)).
  - In check mode it only reads the status and reports what it would enable or disable.
extends_documentation_fragment:
  - oforest.otree.attributes
author:
  - oforest.otree developers (@oforest)
options:
  addons:
    description:
      - The addons that must be enabled. A string is passed to C(microk8s enable) as written
        (C(dns), C(dns:1.1.1.1), C(community/argocd)); a mapping gives C(name) and C(args) (a list of
        arguments after the name).
    type: list
    elements: raw
    required: true
  disable_unlisted:
    description:
      - Disable enabled addons that are not in O(addons) (C(ha-cluster), C(helm) and C(helm3), which
        MicroK8s enables itself, are kept).
    type: bool
    default: false
  microk8s_bin:
    description: Path of the microk8s command.
    type: path
    default: /snap/bin/microk8s
  timeout:
    description: Seconds to wait for MicroK8s to be ready, before reading and after each change.
    type: int
    default: 600
  retries:
    description: How often an enable is retried when MicroK8s reports a change in progress.
    type: int
    default: 3
requirements:
  - PyYAML on the managed host (Ubuntu's python3-yaml, installed with MicroK8s' own dependencies).
notes:
  - Needs root (or membership in the C(microk8s) group).
"""

EXAMPLES = r"""
- name: The addons an oTree cluster needs
  oforest.otree.microk8s_addons:
    addons: [dns, ingress, cert-manager, hostpath-storage, helm3, rbac]
  become: true

- name: DNS with the lab's resolvers, and nothing else enabled
  oforest.otree.microk8s_addons:
    addons:
      - dns:192.0.2.53,192.0.2.54
      - rbac
    disable_unlisted: true
  become: true
"""

RETURN = r"""
enabled:
  description: Addons this run enabled (or would enable, in check mode).
  returned: always
  type: list
  elements: str
  sample: [cert-manager, rbac]
disabled:
  description: Addons this run disabled (or would disable).
  returned: always
  type: list
  elements: str
status:
  description: Every addon MicroK8s knows and its state after the run (before it, in check mode).
  returned: always
  type: dict
  sample: {dns: enabled, ingress: enabled, metallb: disabled}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.oforest.otree.plugins.module_utils.errors import reported
from ansible_collections.oforest.otree.plugins.module_utils.microk8s import (
    HAS_YAML, enable_argv, normalize_addons, parse_status, plan, unapplied_args)


class MicroK8s:
    def __init__(self, module):
        self.module = module
        self.bin = module.params["microk8s_bin"]
        self.timeout = module.params["timeout"]

    def run(self, argv, what):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (what, rc, (err or out).strip()[-2000:]),
                                  cmd=" ".join(argv), rc=rc, stdout=out, stderr=err)
        return out

    def status(self, timeout=None):
        timeout = self.timeout if timeout is None else max(1, int(timeout))
        out = self.run([self.bin, "status", "--format", "yaml", "--wait-ready", "--timeout", str(timeout)],
                       "microk8s status")
        with reported(self.module, "microk8s status"):
            status = parse_status(out)
        if not status["running"]:
            self.module.fail_json(msg="MicroK8s is not running after %d s: look at `microk8s inspect` on the host "
                                  "(a full disk, too little memory, or a stopped snap: `snap start microk8s`)" %
                                  timeout)
        return status

    def wait_ready(self):
        self.run([self.bin, "status", "--wait-ready", "--timeout", str(self.timeout)], "microk8s status --wait-ready")

    def settle(self, name, want):
        """`microk8s enable` can return before the status shows the addon (MicroK8s judges it by objects
        such as pod/coredns, which controllers create a little later): wait for it, so a re-run agrees."""
        deadline = time.time() + self.timeout
        while True:
            state = self.status(timeout=deadline - time.time())["addons"].get(name)
            if state == want:
                return
            if time.time() > deadline:
                self.module.fail_json(msg="microk8s %s %s returned, but `microk8s status` still shows it %s after %d s: "
                                      "look at its pods (`microk8s kubectl get pods -A`) and events on the host" % (
                                          "enable" if want == "enabled" else "disable", name, state, self.timeout))
            time.sleep(3)

    def change(self, argv, what):
        for attempt in range(self.module.params["retries"] + 1):
            rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
            if rc == 0:
                self.wait_ready()
                return out
            if "change in progress" in (out + err).lower() and attempt < self.module.params["retries"]:
                time.sleep(10)
                self.wait_ready()
                continue
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (what, rc, (err or out).strip()[-2000:]),
                                  cmd=" ".join(argv), rc=rc, stdout=out, stderr=err)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addons=dict(type="list", elements="raw", required=True),
            disable_unlisted=dict(type="bool", default=False),
            microk8s_bin=dict(type="path", default="/snap/bin/microk8s"),
            timeout=dict(type="int", default=600),
            retries=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML (Ubuntu: python3-yaml)"))
    with reported(module, "microk8s_addons"):
        wanted = normalize_addons(module.params["addons"])
    if module.params["timeout"] < 1:
        module.fail_json(msg="timeout: must be at least 1 second")
    if not os.path.exists(module.params["microk8s_bin"]):
        module.fail_json(msg="MicroK8s is not installed: %s does not exist. Install it first (the "
                         "oforest.otree.microk8s role, or `snap install microk8s --classic --channel=1.35/stable`)" %
                         module.params["microk8s_bin"])

    mk = MicroK8s(module)
    status = mk.status()
    to_enable, to_disable, unknown = plan(status, wanted, module.params["disable_unlisted"])
    if unknown:
        known = sorted(n for n in status["addons"] if "/" not in n)
        module.fail_json(msg="addons: this MicroK8s has no addon named %s (it has: %s). Community addons need "
                         "`microk8s enable community` first and are named community/<name>." % (
                             ", ".join(unknown), ", ".join(known)))
    for warning in unapplied_args(status, wanted):
        module.warn(warning)
    enabled = [a["name"] for a in to_enable]
    changed = bool(to_enable or to_disable)
    diff = {"before": "".join("%s: %s\n" % (n, s) for n, s in sorted(status["addons"].items()) if "/" not in n)}
    if not module.check_mode:
        for addon in to_enable:
            mk.change(enable_argv(mk.bin, addon), "microk8s enable %s" % " ".join(addon["command"]))
            mk.settle(addon["name"], "enabled")
        for name in to_disable:
            mk.change([mk.bin, "disable", name], "microk8s disable %s" % name)
            mk.settle(name, "disabled")
        if changed:
            status = mk.status()
    after = dict(status["addons"])
    if module.check_mode:
        after.update({n: "enabled" for n in enabled})
        after.update({n: "disabled" for n in to_disable})
    diff["after"] = "".join("%s: %s\n" % (n, s) for n, s in sorted(after.items()) if "/" not in n)
    result = dict(changed=changed, enabled=enabled, disabled=to_disable,
                  status={n: s for n, s in status["addons"].items() if "/" not in n})
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
