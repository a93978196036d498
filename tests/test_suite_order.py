"""The suite hands its slowest files out first (``tests/conftest.py``'s ``SLOWEST_FILES``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SLOWEST_FILES

TESTS = Path(__file__).parent


def test_every_file_named_as_slowest_exists():
    """A renamed file would silently lose its place at the front of the queue."""
    assert [name for name in SLOWEST_FILES if not (TESTS / name).is_file()] == []
    assert len(set(SLOWEST_FILES)) == len(SLOWEST_FILES)


def test_the_collected_files_come_slowest_first(request: pytest.FixtureRequest):
    if (request.config.getoption("failedfirst", default=False)
            or request.config.getoption("newfirst", default=False)):
        pytest.skip("--ff/--nf put other tests first, as asked")
    files = list(dict.fromkeys(item.path for item in request.session.items))
    named = [TESTS / name for name in SLOWEST_FILES]
    ranks = [named.index(path) if path in named else len(named) for path in files]
    assert ranks == sorted(ranks)
