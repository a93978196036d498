"""The entry points' logging (:mod:`cryptosweep.logs`)."""

from __future__ import annotations

import io
import logging
import sys

from cryptosweep.logs import configure_logging


def test_console_lines_go_to_the_stderr_of_the_moment(monkeypatch):
    """A kernel or a test capture replaces sys.stderr after logging was configured (once per
    process): the package's lines follow it instead of writing to a stream since closed."""
    configure_logging("INFO")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("cryptosweep.test").warning("to the first")
    monkeypatch.setattr(sys, "stderr", second)
    first.close()
    logging.getLogger("cryptosweep.test").warning("to the second")
    assert "to the second" in second.getvalue() and "Logging error" not in second.getvalue()
    handlers = [h for h in logging.getLogger("cryptosweep").handlers
                if getattr(h, "_cryptosweep", False)]
    assert len(handlers) == 1  # configured once however often it is called
    configure_logging("INFO")
    assert len([h for h in logging.getLogger("cryptosweep").handlers
                if getattr(h, "_cryptosweep", False)]) == 1
