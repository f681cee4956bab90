#!/usr/bin/env python3
"""Print why a stage failed, briefly, from its log (tests/ci.sh calls it after the summary).

A CI reader sees only the end of the run's output. Ansible's failure lines are one long JSON object
whose useful fields (msg, stderr, the failed item) come after the command line, so cutting the raw
line hides them. For each failure this prints the task's name and those fields, each shortened.
The last failures are shown (earlier ones are mostly expected: a test provoking an error, a rescued
task); ignored ones are left out. Pytest's ``E`` lines, the idempotence message and the recap lines
are printed as they are.

Usage: failure_excerpt.py LOG [MAX_FAILURES]
"""
import json
import re
import sys

FAILURE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\](?: \(item=(?P<item>.*?)\))?:? ?(?:FAILED!|UNREACHABLE!)? => (?P<body>\{.*\})\s*$")
TASK = re.compile(r"^TASK \[(?P<name>.*)\]")
OTHER = re.compile(r"Idempotence test failed|^E  |^CRITICAL|failed=[1-9]|unreachable=[1-9]")
FIELDS = ("assertion", "msg", "stderr", "stdout", "rc", "status", "url")
WIDTH = 300


def short(value, width=WIDTH):
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def failure_lines(task, match):
    head = f"FAILED: [{match['host']}] {task or '(task unknown)'}"
    if match["item"]:
        head += f" (item={short(match['item'], 80)})"
    lines = [head]
    try:
        body = json.loads(match["body"])
    except ValueError:
        return lines + ["  " + short(match["body"])]
    for field in FIELDS:
        if body.get(field) not in (None, "", []):
            lines.append(f"  {field}: {short(body[field], 1200 if field == 'msg' else WIDTH)}")
    for result in body.get("results", []) if isinstance(body.get("results"), list) else []:
        if isinstance(result, dict) and result.get("failed"):
            lines.append(f"  a failed item: {short(result.get('msg') or result.get('stderr') or '', 200)}")
            break
    return lines


def excerpt(lines, max_failures=5):
    task, failures, other = None, [], []
    for line in lines:
        line = line.rstrip("\n")
        if line.strip() == "...ignoring" and failures:
            failures.pop()
            continue
        found = TASK.match(line)
        if found:
            task = found["name"]
            continue
        found = FAILURE.match(line)
        if found:
            failures.append(failure_lines(task, found))
        elif OTHER.search(line):
            other.append(line[:400])
    out = []
    if len(failures) > max_failures:
        earlier = len(failures) - max_failures
        out.append(f"({earlier} earlier failure{'s' if earlier > 1 else ''} in the log, rescued or expected by the tests)")
    out += [line for failure in failures[-max_failures:] for line in failure]
    return out + other[-6:]


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as log:
        print("\n".join(excerpt(log, int(argv[2]) if len(argv) > 2 else 5)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
