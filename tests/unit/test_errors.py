"""One error path for every module (plugins/module_utils/errors.py): an error the collection raises
for the user fails the module with its message, the field at fault and the HTTP status; anything else
is reported as a bug with the trace kept for -vvv. Each module's error type is such an error."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".cache" / "collections"))

from ansible_collections.oforest.otree.plugins.module_utils import errors, gitlab, microk8s, otree_render  # noqa: E402
from ansible_collections.oforest.otree.plugins.module_utils.k8s import common  # noqa: E402


class Failed(Exception):
    pass


class FakeModule:
    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Failed()


@pytest.mark.parametrize("error, field, status", [
    (otree_render.SpecError("experiments[pgg].host", "not a name"), "experiments[pgg].host", None),
    (common.K8sError("forbidden", status=403), None, 403),
    (gitlab.GitLabError("token refused", 401), None, 401),  # positional, as the client raises it
    (microk8s.AddonsError("addons[0]: 'Ingress' is not an addon name"), "addons", None),
])
def test_an_error_for_the_user_names_its_field_and_status(error, field, status):
    module = FakeModule()
    with pytest.raises(Failed):
        with errors.reported(module, "x"):
            raise error
    assert module.failed["msg"] == str(error)
    assert module.failed.get("field") == field and module.failed.get("status") == status
    assert "exception" not in module.failed


def test_anything_else_is_reported_as_a_bug_with_its_trace():
    module = FakeModule()
    with pytest.raises(Failed):
        with errors.reported(module, "k8s_apply"):
            {}["missing"]
    assert module.failed["msg"].startswith("k8s_apply failed unexpectedly (a bug of the collection")
    assert "KeyError" in module.failed["exception"]


def test_exit_and_fail_pass_through():
    with pytest.raises(SystemExit):
        with errors.reported(FakeModule(), "x"):
            raise SystemExit(0)
