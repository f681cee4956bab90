"""No task of a role hides a failure of something that changes the host: `failed_when: false` is only
for read-only probes (`changed_when: false`) whose result a later task judges. A task that changes
something must fail when it fails (e.g. a chmod on a path it cannot change)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from tasks(node.get(key) or [])


def test_only_read_only_probes_ignore_their_failures():
    offenders = []
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")) + sorted(ROOT.glob("roles/*/handlers/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text()) or []):
            if task.get("failed_when") is False and task.get("changed_when") is not False:
                offenders.append("%s: %s" % (path.relative_to(ROOT), task.get("name")))
    assert not offenders, "tasks that hide the failure of a change: %s" % offenders
