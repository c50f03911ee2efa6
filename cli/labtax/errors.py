"""Errors that end a command with a clear message (exit 2) instead of a traceback."""

from __future__ import annotations


class LabtaxError(Exception):
    """A usage or environment problem; the message says what to do about it."""

    exit_code = 2


def require(modules: tuple[str, ...], extra: str, what: str) -> None:
    """Fail with the install command when a command's optional dependencies are missing (the core install,
    which the pre-commit hook uses, carries only what lint needs)."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise LabtaxError(
            f"{what} needs {', '.join(missing)}: pip install 'labtax[{extra}]' (or `make demo`, which installs everything)"
        )


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT/SIGTERM, with what to do next: main() prints "interrupted; <hint>" and exits
    130 or 143."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint
