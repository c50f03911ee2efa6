"""A damaged call-cache entry is a miss (and is replaced), never a crash of this or any later run."""

from __future__ import annotations

import json
import shutil

from .conftest import run_labtax
from .fake_openai import FakeOpenAI
from .test_generate import generate, make_taxonomy, read_jsonl
from .test_generate_cli import _env

BAD_ENTRIES = {
    "empty object": "{}",
    "list": "[]",
    "choices not a list": '{"choices": 5}',
    "no choices": '{"choices": []}',
    "text not a string": '{"choices": [{"text": 5, "finish_reason": "stop"}]}',
    "choice not an object": '{"choices": ["Answer: hi"]}',
    "not JSON": '{"choices": [',
    "folder": None,
}


def _entries(out):
    return sorted(p for p in (out / ".cache" / "calls").glob("??/*.json"))


def _damage(path, content):
    path.unlink()
    if content is None:
        path.mkdir()
        (path / "inside").write_text("x")
    else:
        path.write_text(content)


def _valid(path) -> bool:
    data = json.loads(path.read_text()) if path.is_file() else None
    return isinstance(data, dict) and isinstance(data["choices"][0]["text"], str)


def test_damaged_entries_are_misses_and_replaced(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform", "knowledge"))
    out = tmp_path / "gen"
    with FakeOpenAI() as fake:
        first = generate(root, fake, out, n=2)
        samples = read_jsonl(out / "compositional.jsonl") + read_jsonl(out / "knowledge.jsonl")
        entries = _entries(out)
        damaged = entries[:: max(1, len(entries) // len(BAD_ENTRIES))][: len(BAD_ENTRIES)]
        for path, content in zip(damaged, BAD_ENTRIES.values()):
            _damage(path, content)
        calls = fake.calls()
        second = generate(root, fake, out, n=2)
        assert fake.calls() == calls + len(damaged)  # exactly the damaged entries were asked again
        third = generate(root, fake, out, n=2)
        assert fake.calls() == calls + len(damaged)  # and replaced: a third run is free
    assert len(damaged) == len(BAD_ENTRIES)
    assert all(_valid(path) for path in damaged)
    assert second["totals"]["teacher_calls"] == len(damaged) and third["totals"]["teacher_calls"] == 0
    assert second["totals"]["accepted"] == first["totals"]["accepted"] == 4
    assert read_jsonl(out / "compositional.jsonl") + read_jsonl(out / "knowledge.jsonl") == samples


def test_damaged_entry_does_not_crash_the_cli(tmp_path):
    root = make_taxonomy(tmp_path / "tax", ("freeform",))
    out = tmp_path / "gen"
    args = ("generate", "-n", "1", "--no-progress", "--output", str(out))
    with FakeOpenAI() as fake:
        assert run_labtax(*args, cwd=root, env=_env(fake)).returncode == 0
        entries = _entries(out)
        _damage(entries[0], "[]")
        _damage(entries[1], None)
        shard = entries[2].parent
        shutil.rmtree(shard)
        shard.write_text("a file where a shard folder belongs")
        for _ in range(2):  # "every later run": the second one too
            proc = run_labtax(*args, cwd=root, env=_env(fake))
            assert proc.returncode == 0, proc.stderr
            assert "Traceback" not in proc.stderr
    assert all(_valid(path) for path in entries[:3])
    assert json.loads((out / "summary.json").read_text())["totals"]["accepted"] == 1
