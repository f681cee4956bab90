"""oTree's runtime contract, for real (fixtures and what they run: conftest.py)."""
from __future__ import annotations

import urllib.error
import urllib.request

from tests.runtime.conftest import results


def test_probes_answer(otree_run):
    server = otree_run[0]
    assert server.probe_http(server.container["readinessProbe"]["httpGet"]["path"]) == 200
    assert server.probe_http(server.container["startupProbe"]["httpGet"]["path"]) == 200
    assert server.container["livenessProbe"]["tcpSocket"]["port"] == "http"
    assert server.probe_tcp()


def test_production_mode_requires_login(otree_run):
    """OTREE_PRODUCTION + STUDY: the admin pages are not open (the admin password is in force)."""
    server = otree_run[0]
    req = urllib.request.Request("http://127.0.0.1:%d/sessions" % server.port)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            final = r.geturl()
    except urllib.error.HTTPError as e:
        final = str(e.code)
    assert "login" in final.lower() or final in ("401", "403"), final


def test_bots_play_a_session_and_results_survive_a_restart(played, otree_run):
    server, values, postgres = otree_run
    assert results(postgres) == "2|30|30", "the bots' answers are not in Postgres"
    server.stop()
    server.start()
    assert results(postgres) == "2|30|30", "results lost after restarting oTree"
    sessions = postgres["psql"]("SELECT count(*) FROM otree_session", db="otree")
    assert int(sessions) >= 1
