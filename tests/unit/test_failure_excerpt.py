"""tests/failure_excerpt.py: what a CI reader sees of a failed stage."""
import json

from tests.failure_excerpt import excerpt

CMD = ["curl", "-sS", "--cacert", "/root/.ansible/tmp/" + "x" * 300 + "/root.pem", "https://pgg.example.org/"]


def test_the_failure_says_task_and_stderr_past_a_long_command():
    body = {"attempts": 60, "changed": False, "cmd": CMD, "msg": "non-zero return code", "rc": 60,
            "stderr": "curl: (60) SSL certificate problem: unable to get local issuer certificate"}
    log = ["TASK [Fetch the experiment over HTTPS] ****",
           "fatal: [localhost]: FAILED! => " + json.dumps(body),
           "PLAY RECAP ****",
           "localhost : ok=10 changed=2 unreachable=0 failed=1 skipped=5"]
    out = excerpt(log)
    assert out[0] == "FAILED: [localhost] Fetch the experiment over HTTPS"
    assert "  stderr: curl: (60) SSL certificate problem: unable to get local issuer certificate" in out
    assert "  rc: 60" in out
    assert out[-1].startswith("localhost : ok=10")


def test_an_item_failure_names_its_item_and_long_fields_are_cut():
    body = {"msg": "m" * 2000, "stderr": "y" * 1000}
    log = ["TASK [Apply] ***", "failed: [node] (item=ns/otree) => " + json.dumps(body)]
    out = excerpt(log)
    assert out[0] == "FAILED: [node] Apply (item=ns/otree)"
    assert out[1].startswith("  msg: mmm") and out[1].endswith("...") and 1200 <= len(out[1]) < 1220
    assert out[2].startswith("  stderr: yyy") and out[2].endswith("...") and len(out[2]) < 320


def test_unreachable_and_pytest_lines_and_a_limit():
    log = ["TASK [Gathering Facts] ***"]
    log += [f'fatal: [h{i}]: UNREACHABLE! => {{"msg": "no route {i}"}}' for i in range(7)]
    log += ["E   AssertionError: 3 != 4"]
    out = excerpt(log, max_failures=2)
    assert out[:5] == ["(5 earlier failures in the log, rescued or expected by the tests)",
                       "FAILED: [h5] Gathering Facts", "  msg: no route 5",
                       "FAILED: [h6] Gathering Facts", "  msg: no route 6"]
    assert out[-1] == "E   AssertionError: 3 != 4"


def test_an_ignored_failure_is_left_out():
    log = ["TASK [Probe] ***", 'fatal: [h]: FAILED! => {"msg": "expected"}', "...ignoring",
           "TASK [Real] ***", 'fatal: [h]: FAILED! => {"msg": "the cause"}']
    assert excerpt(log) == ["FAILED: [h] Real", "  msg: the cause"]


def test_a_failed_assert_says_which_condition():
    body = {"assertion": "x.msg is match('a: ')", "evaluated_to": False, "msg": "a:\nb"}
    out = excerpt(["TASK [Check] ***", "fatal: [h]: FAILED! => " + json.dumps(body)])
    assert out == ["FAILED: [h] Check", "  assertion: x.msg is match('a: ')", "  msg: a: b"]
