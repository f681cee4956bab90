#!/usr/bin/env python3
"""Every role's README variable tables, generated from its meta/argument_specs.yml (the role's one
interface definition; ansible-doc -t role reads the same file).

    python scripts/role_readmes.py           rewrite the generated part of roles/*/README.md
    python scripts/role_readmes.py --check   exit 1 naming each README that is out of date (CI, unit test)

A README keeps what people wrote around the generated part, which sits between the two marker lines;
a role without a README gets one with its short description and the tables.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN variables: generated from meta/argument_specs.yml by scripts/role_readmes.py -->"
END = "<!-- END variables -->"
MARKUP = re.compile(r"\b([CMIVOBRE]|RV)\(([^)]*)\)")


def text(value):
    """ansible-doc markup (C(x), O(x), M(x), ...) as Markdown, lists joined, pipes escaped."""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    value = MARKUP.sub(lambda m: "*%s*" % m.group(2) if m.group(1) == "I" else "`%s`" % m.group(2), str(value or ""))
    return " ".join(value.split()).replace("|", "\\|")


def default(opt):
    if "default" not in opt:
        return "required" if opt.get("required") else ""
    return "`%s`" % json.dumps(opt["default"]).replace("|", "\\|")


def rows(options, prefix=""):
    for name in sorted(options):
        opt = options[name] or {}
        kind = opt.get("type", "str") + ("/%s" % opt["elements"] if opt.get("elements") else "")
        choices = " Choices: %s." % ", ".join("`%s`" % c for c in opt["choices"]) if opt.get("choices") else ""
        yield "| `%s%s` | %s | %s | %s%s |" % (prefix, name, kind, default(opt), text(opt.get("description")), choices)
        if opt.get("options"):
            sub = "%s%s%s." % (prefix, name, "[]" if opt.get("type") == "list" else "")
            yield from rows(opt["options"], sub)


def generated(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    out = [BEGIN, ""]
    for entry in sorted(specs, key=lambda e: (e != "main", e)):
        spec = specs[entry]
        title = "Variables" if entry == "main" else "Variables of `tasks_from: %s`" % entry
        out += ["## %s" % title, ""]
        if entry != "main":
            out += [text(spec.get("short_description")), ""]
        out += ["| variable | type | default | description |", "|---|---|---|---|"]
        out += list(rows(spec.get("options") or {})) + [""]
    return "\n".join(out + [END])


def readme(role):
    path = role / "README.md"
    block = generated(role)
    if not path.exists():
        main = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
        return "# oforest.otree.%s\n\n%s.\n\nTested by `molecule/%s`.\n\n%s\n" % (
            role.name, text(main.get("short_description")).rstrip("."), role.name, block)
    current = path.read_text()
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return current.rstrip("\n") + "\n\n" + block + "\n"


def main(argv):
    stale = []
    for role in sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml")):
        want = readme(role)
        path = role / "README.md"
        if not path.exists() or path.read_text() != want:
            stale.append(str(path.relative_to(ROOT)))
            if "--check" not in argv:
                path.write_text(want)
    if stale and "--check" in argv:
        print("out of date (run python scripts/role_readmes.py): %s" % ", ".join(stale))
        return 1
    print("\n".join("wrote %s" % s for s in stale) or "every role README is current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
