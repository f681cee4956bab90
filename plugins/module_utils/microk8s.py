# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MicroK8s helpers without Ansible: parse `microk8s status --format yaml`, plan addon changes.

Must run on Python 3.8 (the managed host's Python on Ubuntu 20.04).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with Ubuntu and with ansible-core
    HAS_YAML = False

from ansible_collections.oforest.otree.plugins.module_utils.errors import CollectionError

ADDON_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)?$")


class StatusError(CollectionError, ValueError):
    """`microk8s status` or the addons list says something we cannot use (`field`: which option)."""


class AddonsError(StatusError):
    """A bad entry in the addons option."""

    def __init__(self, message):
        super(AddonsError, self).__init__("addons: " + message, field="addons")


def parse_status(text):
    """{'running': bool, 'addons': {name: 'enabled'|'disabled'}} from `status --format yaml`.

    MicroK8s prints this YAML by hand; when it is not running, its message line is indented one
    space deeper than the mapping above it, which no YAML parser accepts: then `running:` is read
    from the text itself (no addons are listed in that case)."""
    data = None
    if HAS_YAML:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("microk8s"), dict):
        m = re.search(r"^microk8s:\s*\n\s+running:\s*(\w+)", text or "", re.M)
        if not m:
            raise StatusError("not the output of `microk8s status --format yaml`: %r" % (text or "")[:200])
        return {"running": m.group(1).lower() == "true", "addons": {}}
    running = data["microk8s"].get("running")
    if isinstance(running, str):
        running = running.lower() == "true"
    addons = {}
    for item in data.get("addons") or []:
        if isinstance(item, dict) and item.get("name"):
            addons[item["name"]] = item.get("status")
            if item.get("repository"):  # 1.24+: also known as <repository>/<name>
                addons["%s/%s" % (item["repository"], item["name"])] = item.get("status")
    return {"running": bool(running), "addons": addons}


def normalize_addons(addons):
    """[{'name': str, 'args': [str]}] from strings ('name' or 'name:arg') and mappings; raises
    StatusError naming the bad item."""
    out, seen = [], set()
    for index, item in enumerate(addons or []):
        if isinstance(item, str):
            name, dummy, arg = item.partition(":")
            args = [arg] if arg else []
        elif isinstance(item, dict):
            name = item.get("name")
            args = item.get("args") or []
            if isinstance(args, str):
                args = [args]
            unknown = sorted(set(item) - {"name", "args"})
            if unknown:
                raise AddonsError("addons[%d]: unknown key(s) %s (use name and args)" % (index, ", ".join(unknown)))
        else:
            raise AddonsError("addons[%d]: must be a name or a mapping with name and args" % index)
        if not isinstance(name, str) or not ADDON_NAME.match(name):
            raise AddonsError("addons[%d]: %r is not an addon name (e.g. dns, cert-manager, community/argocd)" % (
                index, name))
        if not all(isinstance(a, str) for a in args):
            raise AddonsError("addons[%d] (%s): args must be strings" % (index, name))
        if name in seen:
            raise AddonsError("addons[%d]: %s is listed twice" % (index, name))
        seen.add(name)
        # a string is passed as written ('dns:1.1.1.1', the form every MicroK8s accepts)
        command = [item] if isinstance(item, str) else [name] + list(args)
        out.append({"name": name, "args": list(args), "command": command})
    return out


def plan(status, wanted, disable_unlisted=False, keep=("ha-cluster", "helm", "helm3")):
    """(to_enable, to_disable, unknown) for the wanted addons against a parsed status."""
    addons = status["addons"]
    unknown = [a["name"] for a in wanted if a["name"] not in addons]
    to_enable = [a for a in wanted if addons.get(a["name"]) == "disabled"]
    to_disable = []
    if disable_unlisted:
        names = {a["name"].split("/")[-1] for a in wanted}
        to_disable = [n for n, s in addons.items()
                      if "/" not in n and s == "enabled" and n not in names and n not in keep]
    return to_enable, to_disable, unknown


def unapplied_args(status, wanted):
    """Warnings for addons asked for with arguments that are already enabled: MicroK8s enables an
    addon once and `enable` of an enabled addon ignores its arguments (e.g. dns, which MicroK8s 1.35
    enables at install with the host's resolvers, asked for as dns:10.0.0.2)."""
    return ["%s is already enabled, so its arguments (%s) were not applied: MicroK8s keeps those it was "
            "enabled with. To change them run `microk8s disable %s` on the host and run this again (or give "
            "them in MicroK8s' launch configuration, /etc/microk8s.yaml, before installing)." % (
                a["name"], " ".join(a["args"]), a["name"])
            for a in wanted if a["args"] and status["addons"].get(a["name"]) == "enabled"]


def enable_argv(binary, addon):
    """`microk8s enable NAME[:ARG]` for a string item, `microk8s enable NAME ARGS...` for a mapping."""
    return [binary, "enable"] + addon["command"]
