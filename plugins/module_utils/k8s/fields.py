# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Objects as the server stores them: canonical quantities, normalised manifests, the field sets
server-side apply owns, the comparable part of an object, and Secret values redacted for output.
Must run on Python 3.8 (Ubuntu 20.04 targets).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from ansible_collections.oforest.otree.plugins.module_utils.k8s.common import ASSOCIATIVE, ATOMIC_MAPS, IGNORED_META


# ---------------------------------------------------------------------------------------------
# normalisation: send what the server stores, so that an identical re-apply is a no-op

_BIN = (("Ei", 2 ** 60), ("Pi", 2 ** 50), ("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10))
_DEC = (("E", 10 ** 18), ("P", 10 ** 15), ("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3))


def canonical_quantity(value):
    """Kubernetes' canonical form of a quantity: "1024Mi" -> "1Gi", "0.5" -> "500m", 2 -> "2"."""
    text = str(value)
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|k|m)?$", text)
    if not m:
        return text
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return text
    suffix = m.group(2) or ""
    if suffix.endswith("i"):
        total = number * dict(_BIN)[suffix]
        if total != total.to_integral_value():
            return text
        total = int(total)
        for name, size in _BIN:
            if total >= size and total % size == 0:
                return "%d%s" % (total // size, name)
        return str(total)
    milli = number if suffix == "m" else number * dict(_DEC + (("", 1),))[suffix] * 1000
    if milli != milli.to_integral_value():
        return text
    milli = int(milli)
    if milli % 1000:
        return "%dm" % milli
    total = milli // 1000
    for name, size in _DEC:
        if total >= size and total % size == 0:
            return "%d%s" % (total // size, name)
    return str(total)


def normalize(obj):
    """A copy of a manifest in the form the API server stores it."""
    obj = copy.deepcopy(obj)
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        data = obj.setdefault("data", {}) or {}
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        obj["data"] = data
    obj.pop("stringData", None)
    obj.pop("status", None)

    def walk(node, parent=None):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if parent == "resources" and key in ("requests", "limits") and isinstance(value, dict):
                    node[key] = dict((k, canonical_quantity(v)) for k, v in value.items())
                elif key == "storage" and parent in ("requests", "limits"):
                    node[key] = canonical_quantity(value)
                else:
                    walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)
    walk(obj)
    return obj


def contained(want, have):
    """True if every field of `want` has the same value in `have` (the server may add defaults)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(k in have and contained(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(
            contained(w, h) for w, h in zip(want, have))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return want == have
    return want == have


def field_set(obj, prefix=""):
    """The FieldsV1 leaf paths of an applied object (associative lists by their keys)."""
    out = set()
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind"):
            continue
        if prefix == "f:metadata" and key in ("name", "namespace"):
            continue
        path = "%s/f:%s" % (prefix, key) if prefix else "f:%s" % key
        keys = ASSOCIATIVE.get(key) if isinstance(value, list) else None
        if key == "ports" and isinstance(value, list):
            keys = ("containerPort", "protocol") if any("containerPort" in p for p in value if isinstance(p, dict)) \
                else ("port", "protocol")
        if isinstance(value, dict) and value and key not in ATOMIC_MAPS:
            out |= field_set(value, path)
        elif keys and value and all(isinstance(i, dict) for i in value):
            for item in value:
                ident = {}
                for k in keys:
                    if k in item:
                        ident[k] = item[k]
                    elif k == "protocol":
                        ident[k] = "TCP"
                item_path = "%s/k:%s" % (path, json.dumps(ident, sort_keys=True, separators=(",", ":")))
                out.add(item_path + "/.")
                out |= field_set(item, item_path)
        else:
            out.add(path)
    return out


def fieldsv1_set(tree, prefix=""):
    out = set()
    for label, sub in (tree or {}).items():
        if label == ".":
            out.add(prefix + "/.")
            continue
        path = "%s/%s" % (prefix, label) if prefix else label
        if label.startswith("k:"):
            ident = json.loads(label[2:])
            path = "%s/k:%s" % (prefix, json.dumps(ident, sort_keys=True, separators=(",", ":")))
        if sub:
            out |= fieldsv1_set(sub, path)
        else:
            out.add(path)
    return out


def comparable(obj):
    """An object without what the server manages itself (for change detection and diffs)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in IGNORED_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    if not annotations:
        meta.pop("annotations", None)
    out.pop("status", None)
    return out


# ---------------------------------------------------------------------------------------------
# client


def redact(obj):
    """Secret values never reach output: data keys are kept, values replaced."""
    if not obj:
        return obj
    if obj.get("kind") == "Secret":
        obj = copy.deepcopy(obj)
        for field in ("data", "stringData"):
            if obj.get(field):
                obj[field] = dict((k, "<redacted sha256:%s>" % _short_hash(v)) for k, v in obj[field].items())
    return obj


def _short_hash(value):
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:12]
