"""The suite's own guards (tests/conftest.py): they must bite, or every test's isolation is a promise."""

from __future__ import annotations

import os

from . import conftest


def test_a_write_into_the_real_home_is_seen_and_the_interpreter_is_not():
    seen = conftest._WRITES_INTO_HOME
    before = len(seen)
    conftest._audit("open", (str(conftest.REAL_HOME / ".cache" / "labtax" / "x"), "w", 0))
    conftest._audit("os.mkdir", (str(conftest.REAL_HOME / ".ray"), 0o777, -1))
    conftest._audit("open", (str(conftest.REAL_HOME / ".pyenv" / "x.pyc"), "wb", 0))  # its own interpreter
    conftest._audit("open", (str(conftest.REAL_HOME / ".bashrc"), "r", os.O_RDONLY))  # a read
    added = seen[before:]
    del seen[before:]  # this test's own probes are not writes
    assert added == [
        f"open {conftest.REAL_HOME / '.cache' / 'labtax' / 'x'}",
        f"os.mkdir {conftest.REAL_HOME / '.ray'}",
    ]


def test_the_session_home_is_not_the_users():
    assert os.environ["HOME"] != str(conftest.REAL_HOME)
    assert not os.environ["LABTAX_CACHE_DIR"].startswith(str(conftest.REAL_HOME))
