"""microk8s_addons: the status parser on MicroK8s' own output layout (tests/fixtures/microk8s-status,
sources in its README), the plan, bad input named, and the module end to end against the STAND-IN
`microk8s` command (tests/standins/microk8s_command/microk8s; no MicroK8s runs here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import microk8s as m  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "microk8s-status"
STANDIN = ROOT / "tests" / "standins" / "microk8s_command" / "microk8s"


@pytest.mark.parametrize("fixture,running,enabled,disabled", [
    ("v1.19-ha.yaml", True, {"dns", "ha-cluster"}, {"cert-manager", "helm3", "ingress", "rbac", "storage"}),
    ("v1.28.yaml", True, {"dns", "ha-cluster", "helm", "helm3"},
     {"cert-manager", "hostpath-storage", "ingress", "metallb", "rbac", "registry"}),
    ("v1.35-traefik.yaml", True, {"dns", "ha-cluster", "helm", "helm3", "rbac", "hostpath-storage", "cert-manager"},
     {"ingress", "metallb", "registry"}),
    ("not-running.yaml", False, set(), set()),
])
def test_parses_every_layout(fixture, running, enabled, disabled):
    status = m.parse_status((FIXTURES / fixture).read_text())
    assert status["running"] is running
    plain = {n: s for n, s in status["addons"].items() if "/" not in n}
    assert {n for n, s in plain.items() if s == "enabled"} == enabled
    assert {n for n, s in plain.items() if s == "disabled"} == disabled


def test_repository_names_are_known_too():
    status = m.parse_status((FIXTURES / "v1.28.yaml").read_text())
    assert status["addons"]["core/ingress"] == "disabled"
    assert "core/dns" not in m.parse_status((FIXTURES / "v1.19-ha.yaml").read_text())["addons"]


def test_garbage_is_refused():
    with pytest.raises(m.StatusError, match="not the output"):
        m.parse_status("microk8s is running\naddons:\n")


def test_plan_enables_only_what_is_missing_and_reports_unknown():
    status = m.parse_status((FIXTURES / "v1.28.yaml").read_text())
    wanted = m.normalize_addons(["dns", "ingress", "cert-manager", "hostpath-storage", "helm3", "rbac", "gpu"])
    to_enable, to_disable, unknown = m.plan(status, wanted)
    assert [a["name"] for a in to_enable] == ["ingress", "cert-manager", "hostpath-storage", "rbac"]
    assert to_disable == [] and unknown == ["gpu"]


def test_arguments_of_an_enabled_addon_are_reported_as_not_applied():
    status = m.parse_status((FIXTURES / "v1.35-traefik.yaml").read_text())
    assert status["addons"]["dns"] == "enabled" and status["addons"]["metallb"] == "disabled"
    wanted = m.normalize_addons(["dns:10.0.0.2", {"name": "metallb", "args": ["10.0.0.100-10.0.0.110"]}, "rbac"])
    warnings = m.unapplied_args(status, wanted)
    assert len(warnings) == 1 and warnings[0].startswith("dns is already enabled, so its arguments (10.0.0.2)")
    assert "microk8s disable dns" in warnings[0]
    assert m.unapplied_args(status, m.normalize_addons(["dns", "ingress"])) == []


def test_plan_disables_unlisted_but_keeps_what_microk8s_enables_itself():
    status = m.parse_status((FIXTURES / "v1.35-traefik.yaml").read_text())
    _, to_disable, _ = m.plan(status, m.normalize_addons(["dns", "rbac"]), disable_unlisted=True)
    assert sorted(to_disable) == ["cert-manager", "hostpath-storage"]


@pytest.mark.parametrize("addons,text", [
    (["Ingress"], "addons[0]: 'Ingress' is not an addon name"),
    ([{"name": "dns", "arg": "1.1.1.1"}], "unknown key(s) arg"),
    (["dns", "dns:1.1.1.1"], "dns is listed twice"),
    ([42], "must be a name or a mapping"),
    ([{"name": "metallb", "args": [10]}], "args must be strings"),
])
def test_bad_addons_are_named(addons, text):
    with pytest.raises(m.StatusError) as e:
        m.normalize_addons(addons)
    assert text in str(e.value)


def test_enable_argv_keeps_the_colon_form_and_takes_args():
    dns, metallb = m.normalize_addons(["dns:192.0.2.53", {"name": "metallb", "args": ["10.0.0.10-10.0.0.20"]}])
    assert m.enable_argv("/snap/bin/microk8s", dns) == ["/snap/bin/microk8s", "enable", "dns:192.0.2.53"]
    assert m.enable_argv("/snap/bin/microk8s", metallb) == ["/snap/bin/microk8s", "enable", "metallb",
                                                           "10.0.0.10-10.0.0.20"]


# -- the module, run by ansible-playbook against the STAND-IN microk8s command ---------------------

def run_module(tmp_path, args, check=False, diff=False, settle=0):
    state = tmp_path / "state.json"
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "addons", "oforest.otree.microk8s_addons": dict({"microk8s_bin": str(STANDIN), "timeout": 5}, **args),
         "register": "out"},
        {"ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(tmp_path / "out.json")},
         "check_mode": False}]}]))
    env = dict(os.environ, MICROK8S_STANDIN_STATE=str(state), MICROK8S_STANDIN_DELAY="0",
               MICROK8S_STANDIN_SETTLE=str(settle),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=" + sys.executable, str(play)] + (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tmp_path))
    out = json.loads((tmp_path / "out.json").read_text()) if (tmp_path / "out.json").exists() else None
    (tmp_path / "out.json").unlink(missing_ok=True)
    logged = json.loads(state.read_text())["log"] if state.exists() else []
    return proc, out, logged


def test_module_enables_missing_addons_once_then_changes_nothing(tmp_path):
    wanted = {"addons": ["dns", "ingress", "cert-manager", "hostpath-storage", "helm3", "rbac"]}
    proc, out, log = run_module(tmp_path, wanted, check=True, diff=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["changed"] and out["enabled"] == ["ingress", "cert-manager", "hostpath-storage", "rbac"]
    assert log == []  # check mode changed nothing
    assert "ingress: disabled" in out["diff"]["before"] and "ingress: enabled" in out["diff"]["after"]

    proc, out, log = run_module(tmp_path, wanted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["changed"] and log == [["enable", "ingress"], ["enable", "cert-manager"],
                                      ["enable", "hostpath-storage"], ["enable", "rbac"]]
    assert out["status"]["rbac"] == "enabled"

    proc, out, log = run_module(tmp_path, wanted)
    assert proc.returncode == 0 and out["changed"] is False and len(log) == 4


def test_module_waits_until_the_status_shows_the_enabled_addon(tmp_path):
    """Seen on the real node (molecule/microk8s): `microk8s enable dns` returns before the
    controller-manager has made pod/coredns, which is what MicroK8s' status.py looks for, so a status
    read straight after still says disabled and a re-run enabled it again (idempotence failed)."""
    wanted = {"addons": ["dns", "ingress"]}
    proc, out, log = run_module(tmp_path, wanted, settle=4)  # the stand-in hides it for 4 status reads
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["changed"] and out["status"]["ingress"] == "enabled"
    proc, out, log = run_module(tmp_path, wanted, settle=4)
    assert proc.returncode == 0 and out["changed"] is False, out
    assert log == [["enable", "ingress"]]


def test_module_disables_unlisted_on_request(tmp_path):
    proc, out, log = run_module(tmp_path, {"addons": ["helm3"], "disable_unlisted": True})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["disabled"] == ["dns"] and log == [["disable", "dns"]]


def test_module_names_an_unknown_addon_and_changes_nothing(tmp_path):
    proc, out, log = run_module(tmp_path, {"addons": ["rbac", "gpu-operator"]})
    assert proc.returncode != 0
    assert "no addon named gpu-operator" in proc.stdout and "cert-manager" in proc.stdout
    assert log == []


def test_module_says_when_microk8s_is_missing(tmp_path):
    proc, _, _ = run_module(tmp_path, {"addons": ["dns"], "microk8s_bin": str(tmp_path / "nope")})
    assert proc.returncode != 0 and "MicroK8s is not installed" in proc.stdout


def test_module_retries_while_a_change_is_in_progress(tmp_path):
    lock = tmp_path / "state.json.lock"
    lock.write_text("")
    proc, _, log = run_module(tmp_path, {"addons": ["rbac"], "retries": 0})
    assert proc.returncode != 0 and "change in progress" in proc.stdout and log == []


# -- the STAND-IN's kubectl and config, against the STAND-IN API server ------------------------------

@pytest.fixture()
def standin_api(tmp_path):
    from tests.standins.k8s_api.server import start_background, write_kubeconfig
    server, url = start_background()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    yield kubeconfig
    server.shutdown()


def standin(args, kubeconfig, tmp_path, stdin=None):
    env = dict(os.environ, MICROK8S_STANDIN_STATE=str(tmp_path / "state.json"),
               MICROK8S_STANDIN_KUBECONFIG=str(kubeconfig))
    return subprocess.run([sys.executable, str(STANDIN)] + args, env=env, capture_output=True, text=True,
                          input=stdin, timeout=60)


def test_standin_config_and_kubectl_talk_to_the_api_server(standin_api, tmp_path):
    config = standin(["config"], standin_api, tmp_path)
    assert config.returncode == 0 and config.stdout == standin_api.read_text()

    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: mk-probe}\n---\n"
                        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe, namespace: mk-probe}\n"
                        "data: {answer: '42'}\n")
    applied = standin(["kubectl", "apply", "--server-side", "-f", str(manifest)], standin_api, tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.split("\n")[:2] == ["namespace/mk-probe serverside-applied",
                                               "configmap/probe serverside-applied"]
    got = standin(["kubectl", "get", "configmap", "probe", "-n", "mk-probe", "-o", "json"], standin_api, tmp_path)
    assert got.returncode == 0, got.stderr
    body = json.loads(got.stdout)
    assert body["data"] == {"answer": "42"}
    assert any(m["manager"] == "kubectl" for m in body["metadata"]["managedFields"])
    names = standin(["kubectl", "get", "cm", "-n", "mk-probe", "-o", "name"], standin_api, tmp_path)
    assert names.stdout.split() == ["configmap/probe"]


def test_standin_kubectl_errors_read_like_kubectls(standin_api, tmp_path):
    unknown = standin(["kubectl", "get", "flurbs"], standin_api, tmp_path)
    assert unknown.returncode == 1 and 'the server doesn\'t have a resource type "flurbs"' in unknown.stderr
    missing = standin(["kubectl", "get", "configmap", "nope", "-n", "default"], standin_api, tmp_path)
    assert missing.returncode == 1 and "Error from server (NotFound)" in missing.stderr
