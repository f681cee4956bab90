# -*- coding: utf-8 -*-
# Copyright: oforest.otree contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way for the collection's modules to turn an error into fail_json.

Every error the collection raises for a user to act on is a CollectionError: its message says what
to fix, `field` names the option or experiment field at fault, `status` is the HTTP status an API
answered with. `reported(module, what)` wraps a module's work: such an error ends the run with
fail_json (msg, field, status); anything else is a bug and says so, with the trace in `exception`
(shown with -vvv only). Must run on Python 3.8.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback
from contextlib import contextmanager

from ansible.module_utils.common.text.converters import to_native


class CollectionError(Exception):
    """An error with a message that says what to fix."""

    def __init__(self, message, field=None, status=None):
        super(CollectionError, self).__init__(message)
        self.field = field
        self.status = status


@contextmanager
def reported(module, what):
    """Run the block; a CollectionError fails the module naming its field and status, any other
    exception fails it as a bug of `what`."""
    try:
        yield
    except CollectionError as e:
        details = dict((k, v) for k, v in (("field", e.field), ("status", e.status)) if v is not None)
        module.fail_json(msg=to_native(e), **details)
    except Exception as e:  # a bug: say so, with the trace for -vvv
        module.fail_json(msg="%s failed unexpectedly (a bug of the collection, please report it): %s" % (
            what, to_native(e)), exception=traceback.format_exc())
