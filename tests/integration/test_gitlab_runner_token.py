"""The gitlab_runner_token module, run by ansible-playbook against the STAND-IN GitLab API
(tests/standins/gitlab: GitLab cannot run here; the stand-in follows GitLab's runner endpoints, fields,
status codes, error bodies, scope rules and side effects as GitLab's source has them: see its docstring
for the files)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.standins.gitlab.server import serve

ROOT = Path(__file__).resolve().parents[2]

SEED = {
    "users": {"root": {"admin": True}, "alice": {}, "dave": {}},
    "tokens": {
        # the scopes README documents
        "glpat-alice-create": {"user": "alice", "scopes": ["read_api", "create_runner", "manage_runner"]},
        # the scopes README documented before: no read_api
        "glpat-alice-runner-scopes": {"user": "alice", "scopes": ["create_runner", "manage_runner"]},
        "glpat-alice-readonly": {"user": "alice", "scopes": ["read_api"]},
        "glpat-dave-create": {"user": "dave", "scopes": ["read_api", "create_runner", "manage_runner"]},
        "glpat-root-api": {"user": "root", "scopes": ["api"]},
    },
    "groups": {"7": {"path": "lab", "members": {"alice": "owner", "dave": "developer"}}},
    "projects": {"42": {"path": "lab/public-goods", "group": "7", "members": {}},
                 "43": {"path": "lab/trust", "group": "7", "members": {}},
                 "44": {"path": "Lab/Risk-Elicitation", "group": "7", "members": {}}},
    "registry": "registry.example.org:5050",
    "registration_tokens": {"GR1348941legacy": {"type": "project_type", "scope_id": "42"}},
}

BASE = {"api_token": "glpat-alice-create", "project": "lab/public-goods",
        "description": "otree-public-goods", "tags": ["otree", "kubernetes"]}


@pytest.fixture
def gitlab():
    httpd, url = serve(json.loads(json.dumps(SEED)))
    yield httpd, url
    httpd.shutdown()


def run_module(tmp_path, url, args, check=False, diff=False, verbose=False, no_log=False):
    play = tmp_path / "play.yml"
    out_file = tmp_path / "out.json"
    out_file.unlink(missing_ok=True)
    task = {"name": "runner", "oforest.otree.gitlab_runner_token": dict({"gitlab_url": url}, **args),
            "register": "out"}
    if no_log:
        task["no_log"] = True
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        dict(task, ignore_errors=True),
        {"ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(out_file)},
         "check_mode": False, "no_log": True}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="true")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=" + sys.executable, str(play)]
    cmd += (["--check"] if check else []) + (["--diff"] if diff else []) + (["-vvv"] if verbose else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(out_file.read_text())


def runners(httpd):
    return list(httpd.state.runners.values())


def test_creates_a_project_runner_then_finds_it(gitlab, tmp_path):
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, BASE)
    assert out["changed"] and out["action"] == "created"
    assert out["token"].startswith("glrt-")
    [r] = runners(httpd)
    assert (r["runner_type"], r["scope_id"], r["description"]) == ("project_type", "42", "otree-public-goods")
    assert sorted(r["tag_list"]) == ["kubernetes", "otree"] and r["locked"] and r["run_untagged"]
    token = out["token"]

    # re-run with the stored token: nothing changes, no duplicate, same token
    _, out = run_module(tmp_path, url, dict(BASE, runner_token=token))
    assert out["changed"] is False and out["action"] == "kept" and len(runners(httpd)) == 1
    assert httpd.state.runners[r["id"]]["token"] == token


def test_the_projects_registry_path_is_returned_for_the_deployer_policy(gitlab, tmp_path):
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, dict(BASE, project="Lab/Risk-Elicitation", description="otree-risk"))
    assert out["registry_image"] == "registry.example.org:5050/lab/risk-elicitation"
    _, out = run_module(tmp_path, url, dict(BASE, project="42"), check=True)
    assert out["registry_image"] == "registry.example.org:5050/lab/public-goods"
    httpd.state.registry = ""   # an instance without a container registry
    _, out = run_module(tmp_path, url, BASE)
    assert out["registry_image"] is None
    # asked to need it (the gitlab_runner role without image_repository): refused before any change
    _, out = run_module(tmp_path, url, dict(BASE, description="otree-trust", project="lab/trust",
                                            registry_required=True))
    assert out["failed"] and "no container registry path for lab/trust" in out["msg"]
    assert "image_repository" in out["msg"]
    assert [r["description"] for r in runners(httpd)] == ["otree-risk", "otree-public-goods"]


def test_found_runner_without_a_valid_token_gets_a_new_one(gitlab, tmp_path):
    httpd, url = gitlab
    _, first = run_module(tmp_path, url, BASE)
    _, out = run_module(tmp_path, url, BASE)  # token not known (Secret lost): reset, not duplicate
    assert out["changed"] and out["action"] == "rotated" and out["rotated_because"] == "no token known"
    assert len(runners(httpd)) == 1 and out["token"] != first["token"]
    assert runners(httpd)[0]["token"] == out["token"]


def test_rotate_gives_a_new_token_and_the_old_one_stops_working(gitlab, tmp_path):
    httpd, url = gitlab
    _, first = run_module(tmp_path, url, BASE)
    _, out = run_module(tmp_path, url, dict(BASE, runner_token=first["token"], rotate=True))
    assert out["changed"] and out["action"] == "rotated" and out["token"] != first["token"]
    # the old token: refused by GitLab's verify endpoint, so a UI-token run fails naming the field
    _, bad = run_module(tmp_path, url, {"description": "x", "runner_token": first["token"]})
    assert bad["failed"] and "runner_token" in bad["msg"] and "verify" in bad["msg"]


def test_changed_attributes_are_updated_in_place(gitlab, tmp_path):
    httpd, url = gitlab
    _, first = run_module(tmp_path, url, BASE)
    _, out = run_module(tmp_path, url, dict(BASE, runner_token=first["token"], tags=["otree"], locked=False),
                        diff=True)
    assert out["changed"] and out["action"] == "updated" and out["token"] is None   # the known token stays
    assert out["diff"]["before"]["tag_list"] == ["kubernetes", "otree"] and out["diff"]["after"]["tag_list"] == ["otree"]
    [r] = runners(httpd)
    assert r["tag_list"] == ["otree"] and r["locked"] is False


def test_check_mode_creates_nothing(gitlab, tmp_path):
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, BASE, check=True)
    assert out["changed"] and out["action"] == "created" and out["token"] is None
    assert runners(httpd) == []
    assert not [r for r in httpd.state.requests if r["method"] != "GET"]


@pytest.mark.parametrize("args, status, words", [
    ({"api_token": "glpat-wrong"}, 401, ["401", "read_api, create_runner, manage_runner"]),
    ({"api_token": "glpat-alice-readonly"}, 403, ["insufficient_scope", "create_runner"]),
    # GitLab registers only api and read_api for GET /projects/:id: the runner scopes alone fail there
    ({"api_token": "glpat-alice-runner-scopes"}, 403, ["insufficient_scope", "project lab/public-goods",
                                                       "read_api, create_runner, manage_runner"]),
    ({"api_token": "glpat-dave-create"}, 403, ["Maintainer"]),
    ({"project": "lab/no-such-project"}, 404, ["lab/no-such-project", "404"]),
    ({"runner_type": "group_type", "group": "no-such-group"}, 404, ["no-such-group", "404 Group Not Found"]),
])
def test_errors_say_what_to_fix_and_change_nothing(gitlab, tmp_path, args, status, words):
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, dict(BASE, **args))
    assert out["failed"] and out["status"] == status, out
    for w in words:
        assert w in out["msg"], out["msg"]
    assert runners(httpd) == []


def test_a_runner_of_another_project_enabled_here_is_never_touched(gitlab, tmp_path):
    """GitLab lists runners enabled from other projects among a project's runners (same description:
    a lab's naming convention); the module must make its own, not re-token or change the other one."""
    httpd, url = gitlab
    other = httpd.state.new_runner("project_type", "43", {"description": "otree-public-goods", "tag_list": ["x"]},
                                   "alice")
    other["enabled_projects"] = ["42"]
    other_token = other["token"]
    _, out = run_module(tmp_path, url, BASE)
    assert out["action"] == "created" and out["runner"]["id"] != other["id"]
    assert other["token"] == other_token and other["tag_list"] == ["x"]
    _, out = run_module(tmp_path, url, dict(BASE, runner_token=out["token"]))
    assert out["action"] == "kept" and len(runners(httpd)) == 2


def test_token_checks_do_not_pile_up_legacy_runner_managers(gitlab, tmp_path):
    """POST /runners/verify without system_id makes GitLab keep a "<legacy>" runner manager; the module's
    checks use one system_id of their own, reused by every run."""
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, BASE)
    for _ in range(2):
        run_module(tmp_path, url, dict(BASE, runner_token=out["token"]))
    [r] = runners(httpd)
    assert list(r["managers"]) == ["oforest-otree-token-check"] and r["managers"]["oforest-otree-token-check"][
        "contacts"] == 2


def test_group_and_instance_runners(gitlab, tmp_path):
    httpd, url = gitlab
    _, out = run_module(tmp_path, url, {"api_token": "glpat-alice-create", "runner_type": "group_type",
                                        "group": "lab", "description": "lab-runner"})
    assert out["action"] == "created" and runners(httpd)[0]["scope_id"] == "7"
    _, out = run_module(tmp_path, url, {"api_token": "glpat-alice-create", "runner_type": "instance_type",
                                        "description": "shared"})
    assert out["failed"] and out["status"] == 403   # alice is no administrator
    _, out = run_module(tmp_path, url, {"api_token": "glpat-root-api", "runner_type": "instance_type",
                                        "description": "shared"})
    assert out["action"] == "created" and len(runners(httpd)) == 2


def test_a_ui_token_is_verified_and_kept(gitlab, tmp_path):
    httpd, url = gitlab
    r = httpd.state.new_runner("project_type", "42", {"description": "made in the UI"}, "alice")
    _, out = run_module(tmp_path, url, {"description": "made in the UI", "runner_token": r["token"]})
    assert out["changed"] is False and out["action"] == "kept" and out["token"] is None
    assert httpd.state.requests[-1]["path"] == "/api/v4/runners/verify"


def test_legacy_registration_token_is_deprecated(gitlab, tmp_path):
    httpd, url = gitlab
    proc, out = run_module(tmp_path, url, {"description": "legacy", "registration_token": "GR1348941legacy"})
    assert out["failed"] and out["status"] == 410 and "registration tokens disabled" in out["msg"]
    assert "deprecated" in proc.stdout + proc.stderr
    httpd.state.registration_enabled = True
    proc, out = run_module(tmp_path, url, {"description": "legacy", "registration_token": "GR1348941legacy"})
    assert out["action"] == "registered" and out["token"].startswith("glrt-")
    assert "registration_token" in proc.stdout + proc.stderr and "deprecated" in proc.stdout + proc.stderr


def test_absent_deletes_the_runner(gitlab, tmp_path):
    httpd, url = gitlab
    run_module(tmp_path, url, BASE)
    _, out = run_module(tmp_path, url, dict(BASE, state="absent"))
    assert out["changed"] and out["action"] == "deleted" and runners(httpd) == []
    _, out = run_module(tmp_path, url, dict(BASE, state="absent"))
    assert out["changed"] is False


def test_bad_input_is_refused_before_any_request(gitlab, tmp_path):
    httpd, url = gitlab
    for args, field in [({"runner_token": "GR1348941legacy"}, "runner_token"),
                        ({"maximum_timeout": 60}, "maximum_timeout"),
                        ({"tags": ["a,b"]}, "tags")]:
        _, out = run_module(tmp_path, url, dict(BASE, **args))
        assert out["failed"] and out["msg"].startswith(field + ":"), out
    _, out = run_module(tmp_path, "gitlab.example.org", BASE)
    assert out["failed"] and out["msg"].startswith("gitlab_url:")
    assert httpd.state.requests == []


def test_tokens_never_appear_in_output_even_with_vvv(gitlab, tmp_path):
    httpd, url = gitlab
    proc, out = run_module(tmp_path, url, BASE, verbose=True, no_log=True)
    created = out["token"] if "token" in out else runners(httpd)[0]["token"]
    text = proc.stdout + proc.stderr
    assert created not in text and "glpat-alice-create" not in text
    # a known token passed in is masked by Ansible even without no_log on the task
    proc, out = run_module(tmp_path, url, dict(BASE, runner_token=created), verbose=True)
    assert out["action"] == "kept"
    assert created not in proc.stdout + proc.stderr
