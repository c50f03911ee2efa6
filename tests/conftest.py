"""Shared fixtures: paths to this checkout and to the team's shared corpus."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "instructlab-taxonomy"


def pytest_collection_modifyitems(config, items):
    """The tiers (pyproject.toml's markers) where they follow from what a test uses: `model` for every test
    that asks for the converted model, `ray` for the Ray module, `unit` for tests/unit/. `install` and `slow`
    are marked by hand."""
    for item in items:
        if {"model_cache", "cold_start"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if item.path.name == "test_scale_ray.py":
            item.add_marker(pytest.mark.ray)
        if item.path.parent.name == "unit":
            item.add_marker(pytest.mark.unit)


def run_labtax(*args, cwd=None, env=None, check=False, timeout=120, process=False):
    """Run `labtax` as a user would, and return what a subprocess run returns (returncode, stdout, stderr).

    By default in this process, through labtax.main.main (the console script's own entry: its exit codes,
    error handler and signal handling) inside click's CliRunner isolation (argv, environment, stdin, stdout,
    stderr), in `cwd`: a subprocess launch re-imports openai, torch or transformers and cost 1.5-2 s of the
    run's 0.1 s. `process=True` runs the installed console script in a real process, for what only a process
    boundary shows: signals, the interpreter's imports, a process's exit and its environment at start.
    """
    if process:
        exe = shutil.which("labtax", path=str(Path(os.sys.executable).parent)) or "labtax"
        merged = {**os.environ, **(env or {})}
        proc = subprocess.run([exe, *args], cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout)
    else:
        proc = _run_in_process([str(a) for a in args], cwd, env)
    if check and proc.returncode != 0:
        raise AssertionError(f"labtax {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _run_in_process(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    from click.testing import CliRunner

    from labtax.main import main

    with contextlib.chdir(cwd or os.getcwd()), CliRunner().isolation(env=env) as (out, err, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()  # what a command wrote with sys.stdout.write is still in the text buffer
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess(["labtax", *args], code, stdout.decode(), stderr.decode(errors="replace"))


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"shared corpus missing at {CORPUS}: CI lays ../shared beside the clone")
    return CORPUS


REAL_HOME = Path.home()  # read before any fixture points HOME elsewhere


_WRITES_INTO_HOME: list[str] = []
_WRITE_EVENTS = {
    "os.mkdir",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "shutil.rmtree",
    "os.truncate",
}


def _audit(event: str, args: tuple) -> None:
    """Records this process's writes under the user's real home (its interpreter in ~/.pyenv aside): an open
    for writing, a mkdir, rename, remove. Other processes on the machine (a developer's own labtax or pip)
    are not seen, so the check cannot fail because of them; the tests' subprocesses get the session's home
    through HOME and LABTAX_CACHE_DIR instead."""
    if event == "open":
        path, mode, flags = (args + (None, None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        paths = [path] if writing else []
    elif event in _WRITE_EVENTS:
        paths = list(args[:2])
    else:
        return
    for path in paths:
        if isinstance(path, (str, bytes, os.PathLike)) and not isinstance(path, int):
            text = os.fsdecode(os.fspath(path))
            if text.startswith(_REAL_HOME_PREFIX) and not text.startswith(_INTERPRETER_PREFIX):
                _WRITES_INTO_HOME.append(f"{event} {text}")


_REAL_HOME_PREFIX = str(REAL_HOME).rstrip("/") + "/"
_INTERPRETER_PREFIX = str(REAL_HOME / ".pyenv") + "/"
sys.addaudithook(_audit)


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory):
    """Every fixture and test of the session sees a home of its own: HOME (git's global config, pre-commit's
    environments, pip's and virtualenv's caches, Ray's ~/.ray), labtax's cache and Hugging Face's. The user's
    real ones are never read or written. Git gets a fixed identity there."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text("[user]\n\tname = labtax tests\n\temail = tests@labtax.invalid\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("LABTAX_CACHE_DIR", str(home / ".cache" / "labtax"))
        patch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
        patch.setenv("HF_HUB_OFFLINE", "1")  # no test downloads weights or data sets
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "PRE_COMMIT_HOME", "GIT_CONFIG_GLOBAL"):
            patch.delenv(name, raising=False)
        yield home


@pytest.fixture(autouse=True)
def _own_cache_and_real_home_untouched(request, monkeypatch, tmp_path_factory):
    """Each test gets a labtax cache of its own (the converted model's, shared, when it asks for
    `model_cache`), and fails when it wrote into the user's real home (_audit)."""
    own = None
    if "model_cache" in request.fixturenames:
        monkeypatch.setenv("LABTAX_CACHE_DIR", str(request.getfixturevalue("model_cache")))
    else:
        own = tmp_path_factory.mktemp("labtax-cache")
        monkeypatch.setenv("LABTAX_CACHE_DIR", str(own))
    _WRITES_INTO_HOME.clear()
    yield
    if own is not None and any(own.glob("smollm2-*")):
        pytest.fail("the test converted the embedded model into a cache of its own (20-30 s): ask for `model_cache`")
    if _WRITES_INTO_HOME:
        pytest.fail(f"the test wrote into the user's real home: {'; '.join(sorted(set(_WRITES_INTO_HOME))[:5])}")


BUILD_ONCE = """
import json
from labtax.teacher.smollm import ensure_cache
result = ensure_cache(log=lambda message: None)
print(json.dumps({"built": result.built, "path": str(result.path)}))
"""


@pytest.fixture(scope="session")
def cold_start(tmp_path_factory):
    """The model converted once per session, by two first runs at once on an empty cache (which is itself the
    test that they convert once): what each reported, and the cache folder."""
    cache = tmp_path_factory.mktemp("labtax-model-cache")
    env = {**os.environ, "LABTAX_CACHE_DIR": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_ONCE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    return cache, [json.loads(out) for out, _ in outputs]


@pytest.fixture(scope="session")
def model_cache(cold_start) -> Path:
    """A LABTAX_CACHE_DIR holding the converted embedded model: ask for it in any test that runs the model."""
    return cold_start[0]


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """Tests decide themselves what runs: CI=true (set by CI) would turn on network-only checks (LT022)."""
    monkeypatch.delenv("CI", raising=False)
