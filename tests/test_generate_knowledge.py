"""`labtax generate` on InstructLab's real knowledge leaves, unchanged, reading their real documents
(juliadenham/Summit_knowledge, from the shared bundle) through git: a `url.<base>.insteadOf` mirror or
`git daemon` on 127.0.0.1, a document cache in tmp, the scripted OpenAI server (and once the embedded
SmolLM2-135M). Samples name the document they came from; a leaf without documents costs no call."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labtax.markdown import inline

from .conftest import SHARED, run_labtax
from .fake_openai import FakeOpenAI, Reply, good_teacher, stage_of
from .test_diff import GIT_ENV
from .test_documents_fetch import Daemon, free_port
from .test_generate import read_jsonl
from .test_generate_cli import _env

BUNDLE = SHARED / "corpus" / "knowledge-docs" / "Summit_knowledge.bundle"
HEAD_TAXONOMY = SHARED / "corpus" / "instructlab-taxonomy" / "head"
SUMMIT_URL = "https://github.com/juliadenham/Summit_knowledge"
COMMIT = "5f7158a5ce83c4ff493bfe341fe31ecad64ff697"
CHICKADEE = "knowledge/science/animals/birds/black_capped_chickadee/qna.yaml"
SWIFTIES = "knowledge/arts/music/fandom/swifties/qna.yaml"
# Each leaf as InstructLab wrote it: the document, and the repository URL in its own spelling.
DOCUMENTS = {CHICKADEE: ("chickadee.md", SUMMIT_URL), SWIFTIES: ("swifties.md", f"{SUMMIT_URL}.git")}
OUTLINES = {CHICKADEE: "Information about the black capped chickadee", SWIFTIES: "Overview of Swifties"}
SAMPLE_KEYS = {"id", "messages", "leaf", "kind", "provenance", "judge"}
DOCUMENT_KEYS = {"repo", "commit", "path", "chunk", "chunk_hash", "page", "heading"}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Documents (and the embedded teacher's converted weights) cached in tmp; git without user settings."""
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "cache"


def bare_clone(target: Path) -> Path:
    if not BUNDLE.is_file():
        pytest.fail(f"shared corpus missing at {BUNDLE}")
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(BUNDLE), str(target)], check=True, env={**os.environ, **GIT_ENV}
    )
    return target


def route_summit(tmp_path: Path, monkeypatch, to: str) -> None:
    """Both spellings of the real URL (with and without .git) go to `to`, as a user's mirror rule would."""
    config = tmp_path / "gitconfig"
    config.write_text(f'[url "{to}"]\n\tinsteadOf = {SUMMIT_URL}.git\n\tinsteadOf = {SUMMIT_URL}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))


@pytest.fixture
def summit_mirror(tmp_path, monkeypatch) -> Path:
    mirror = bare_clone(tmp_path / "Summit_knowledge.git")
    route_summit(tmp_path, monkeypatch, f"file://{mirror}")
    return mirror


def fingerprint(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def generate(fake, *args: str, cwd: Path = HEAD_TAXONOMY, timeout: int = 300):
    # The fake's judges say "3" to everything; calibration (tests/test_gate.py) would rightly call that unvetted.
    # --keep-unvetted: these tests are of documents and files, not of the gate (calibration off)
    proc = run_labtax(
        "generate",
        "--no-progress",
        "--no-calibrate",
        "--keep-unvetted",
        *args,
        cwd=cwd,
        env=_env(fake),
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def document_text(mirror: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(mirror), "show", f"{COMMIT}:{path}"], check=True, capture_output=True
    ).stdout


def assert_names_its_document(sample_or_rejection: dict, leaf: str) -> None:
    """The chunk id is `<path>@<full sha>#<byte start>-<byte end>` in the leaf's own document."""
    document, _ = DOCUMENTS[leaf]
    chunk = sample_or_rejection.get("chunk") or sample_or_rejection["provenance"]["chunk"]
    assert re.fullmatch(rf"{re.escape(document)}@{COMMIT}#\d+-\d+", chunk), chunk


def test_instructlab_leaves_unchanged_generate_from_their_real_documents(tmp_path, summit_mirror):
    before = fingerprint(HEAD_TAXONOMY / "knowledge")
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        proc = generate(fake, "knowledge", "-n", "2", "--output", str(out))
        qa_systems = [r["messages"][0]["content"] for r in fake.requests if stage_of(r) == "qa"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fingerprint(HEAD_TAXONOMY / "knowledge") == before  # read as they are, nothing written beside them
    summary = summary_of(out)
    assert sorted(summary["leaves"]) == sorted(DOCUMENTS)
    assert all(leaf["accepted"] == 2 and leaf["note"] is None for leaf in summary["leaves"].values())
    # The leaf's document_outline reaches the qa prompt, on one line.
    assert all(any(outline in system for system in qa_systems) for outline in OUTLINES.values())

    closed_book = read_jsonl(out / "knowledge.jsonl")
    with_context = read_jsonl(out / "knowledge_with_context.jsonl")
    assert len(closed_book) == len(with_context) == 4
    for sample in closed_book:
        document, repo = DOCUMENTS[sample["leaf"]]
        prov = sample["provenance"]
        assert prov["document"] == {
            "repo": repo,
            "commit": COMMIT,
            "path": document,
            "chunk": prov["chunk"],
            "chunk_hash": hashlib.sha256(prov["context"].encode()).hexdigest()[:16],
            "page": 0,  # Markdown has no pages
            "heading": prov["document"]["heading"],
        }
        assert_names_its_document(sample, sample["leaf"])
        # The chunk is the exact byte range of the real document that its id names.
        start, end = map(int, prov["chunk"].rsplit("#", 1)[1].split("-"))
        assert document_text(summit_mirror, document)[start:end].decode() == prov["context"]
        assert isinstance(prov["document"]["heading"], str) and prov["document"]["heading"]
        assert prov["context"] not in sample["messages"][1]["content"]  # closed-book: the question alone

    # The second form: the same sample, the chunk before the question in the user turn.
    for plain, read in zip(closed_book, with_context):
        assert set(read) == set(plain) == SAMPLE_KEYS and read["id"] == plain["id"]
        assert {k: v for k, v in read.items() if k != "messages"} == {k: v for k, v in plain.items() if k != "messages"}
        assert [m["role"] for m in read["messages"]] == ["system", "user", "assistant"]
        assert (
            read["messages"][1]["content"] == f"{plain['provenance']['context']}\n\n{plain['messages'][1]['content']}"
        )
        assert read["messages"][0] == plain["messages"][0] and read["messages"][2] == plain["messages"][2]
    assert len({frozenset(s["provenance"]) for s in closed_book + with_context}) == 1  # one shape for every row


def test_second_form_is_rebuilt_from_the_leaf_folders_byte_for_byte(tmp_path, summit_mirror):
    one_by_one, together = tmp_path / "seq", tmp_path / "both"
    with FakeOpenAI() as fake:
        for leaf in (SWIFTIES, CHICKADEE):
            assert generate(fake, leaf.rsplit("/", 1)[0], "-n", "2", "--output", str(one_by_one)).returncode == 0
        assert generate(fake, "knowledge", "-n", "2", "--output", str(together)).returncode == 0
        (together / "knowledge_with_context.jsonl").unlink()
        calls = fake.calls()
        again = generate(fake, "knowledge", "-n", "2", "--output", str(together))
        assert again.returncode == 0 and fake.calls() == calls  # a re-run replays from the cache
    for name in ("knowledge.jsonl", "knowledge_with_context.jsonl", "review/rejected.jsonl", "eval/heldout.jsonl"):
        assert (one_by_one / name).read_bytes() == (together / name).read_bytes(), name


def test_rejections_keep_the_chunk_id(tmp_path, summit_mirror):
    def responder(request):
        seed, stage = request.get("seed") or 0, stage_of(request)
        if seed == 0 and stage == "qa":
            return Reply("I cannot think of a question.")  # parse_failure at qa
        if seed == 1 and stage == "judge_knowledge":
            return Reply("1")  # judge_score
        return good_teacher(request)

    out = tmp_path / "out"
    with FakeOpenAI(responder=responder) as fake:
        proc = generate(fake, CHICKADEE.rsplit("/", 1)[0], "-n", "2", "--max-attempts", "2", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rejected = read_jsonl(out / "review" / "rejected.jsonl")
    assert sorted((r["stage"], r["reason"]) for r in rejected) == [
        ("judge_faithful", "judge_score"),
        ("qa", "parse_failure"),
    ]
    for record in rejected:
        assert_names_its_document(record, CHICKADEE)
    assert summary_of(out)["leaves"][CHICKADEE]["accepted"] == 2


def _broken_taxonomy(tmp_path: Path, old: str, new: str) -> Path:
    """The head knowledge leaves, the chickadee's document section changed by one replacement."""
    root = tmp_path / "tax"
    shutil.copytree(HEAD_TAXONOMY / "knowledge", root / "knowledge")
    leaf = root / CHICKADEE
    text = leaf.read_text(encoding="utf-8")
    assert old in text
    leaf.write_text(text.replace(old, new), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "old,new,reason",
    [
        (COMMIT, "0123456789" * 4, f"commit '{'0123456789' * 4}' is not in {SUMMIT_URL}"),
        (f"repo: {SUMMIT_URL}", "repo: git://127.0.0.1:{port}/nothing.git", "cannot fetch git://127.0.0.1:{port}"),
        ("- chickadee.md", "- chickadees/*.md", f"pattern 'chickadees/*.md' matches no file in {SUMMIT_URL}"),
    ],
    ids=["unknown-commit", "unreachable-repo", "pattern-matches-nothing"],
)
def test_a_leaf_without_its_documents_gets_one_rejection_no_calls_and_a_note(tmp_path, summit_mirror, old, new, reason):
    port = free_port()
    root = _broken_taxonomy(tmp_path, old, new.format(port=port))
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        proc = generate(fake, "-n", "2", "--output", str(out), cwd=root)
        prompts = " ".join(m["content"] for r in fake.requests for m in r["messages"])
        plan = generate(fake, "--dry-run", "-n", "2", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reason = reason.format(port=port)
    summary = summary_of(out)
    broken = summary["leaves"][CHICKADEE]
    assert (broken["accepted"], broken["generated"], broken["rejected"]) == (0, 1, {"no_documents": 1})
    assert broken["teacher_calls"] == broken["cached_calls"] == 0 and "chickadee" not in prompts.lower()
    assert broken["note"].startswith("no documents (no teacher calls made): ") and reason in broken["note"]
    assert f"  note: {broken['note']}" in proc.stdout
    (record,) = [r for r in read_jsonl(out / "review" / "rejected.jsonl") if r["leaf"] == CHICKADEE]
    assert (record["stage"], record["reason"], record["chunk"]) == ("documents", "no_documents", "")
    assert reason in record["detail"]
    assert summary["leaves"][SWIFTIES]["accepted"] == 2  # the other leaf still generates
    assert {s["leaf"] for s in read_jsonl(out / "knowledge_with_context.jsonl")} == {SWIFTIES}
    # The PR comment says why, beside the leaf.
    comment = run_labtax("comment", "--summary", str(out / "summary.json"), cwd=root, check=True).stdout
    assert inline(broken["note"], 120) in comment and inline(broken["note"], 300) in comment
    assert plan.returncode == 0 and "0-0 teacher calls, no documents (" in plan.stdout and reason in plan.stdout


def test_documents_partly_read_still_generate_and_the_note_says_what_was_left_out(tmp_path, summit_mirror):
    root = _broken_taxonomy(tmp_path, "- chickadee.md", "- chickadee.md\n    - birds/*.pdf")
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        proc = generate(fake, CHICKADEE.rsplit("/", 1)[0], "-n", "2", "--output", str(out), cwd=root)
    assert proc.returncode == 0, proc.stderr
    leaf = summary_of(out)["leaves"][CHICKADEE]
    assert leaf["accepted"] == 2 and leaf["rejected"] == {}
    assert (
        leaf["note"] == f"documents partly read: pattern 'birds/*.pdf' matches no file in {SUMMIT_URL} at {COMMIT[:12]}"
    )


@pytest.fixture
def summit_daemon(tmp_path, monkeypatch):
    """The documents repository behind `git daemon` on 127.0.0.1, the real URL routed to it."""
    base = tmp_path / "served"
    base.mkdir()
    bare_clone(base / "docs.git")
    daemon = Daemon(base)
    daemon.start()
    route_summit(tmp_path, monkeypatch, daemon.url)
    yield daemon
    daemon.stop()


def test_offline_needs_the_cache_and_a_warm_cache_needs_no_server(tmp_path, summit_daemon, cache):
    cold, online, offline = tmp_path / "cold", tmp_path / "online", tmp_path / "offline"
    with FakeOpenAI() as fake:
        plan = generate(fake, "knowledge", "--offline", "--dry-run")
        proc = generate(fake, "knowledge", "-n", "2", "--offline", "--output", str(cold))
        assert fake.calls() == 0
        assert not list((cache / "documents").glob("*.git/shallow"))  # nothing was fetched
        assert plan.returncode == 0 and "--offline forbids fetching" in plan.stdout
        assert proc.returncode == 0, proc.stderr
        for leaf in DOCUMENTS:
            note = summary_of(cold)["leaves"][leaf]["note"]
            assert f"commit {COMMIT} of {DOCUMENTS[leaf][1]} is not in the cache and --offline forbids fetching" in note

        assert generate(fake, "knowledge", "-n", "2", "--output", str(online)).returncode == 0  # fetches, warms
        summit_daemon.stop()
        proc = generate(fake, "knowledge", "-n", "2", "--offline", "--output", str(offline))
        assert proc.returncode == 0, proc.stderr
    summary = summary_of(offline)
    assert all(leaf["accepted"] == 2 and leaf["teacher_calls"] > 0 for leaf in summary["leaves"].values())
    for name in ("knowledge.jsonl", "knowledge_with_context.jsonl"):
        assert (offline / name).read_bytes() == (online / name).read_bytes(), name


@pytest.mark.slow
def test_embedded_teacher_writes_about_the_real_document(tmp_path, summit_mirror, monkeypatch):
    """One real run on SmolLM2-135M (about 3 minutes on 2 CPU cores): every candidate that got a chunk
    names it, whether accepted or rejected."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("LABTAX_TEACHER_MODEL", raising=False)
    out = tmp_path / "out"
    proc = run_labtax(
        "generate",
        "--no-progress",
        CHICKADEE.rsplit("/", 1)[0],
        "-n",
        "1",
        "--max-attempts",
        "2",
        "--output",
        str(out),
        cwd=HEAD_TAXONOMY,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("teacher: embedded SmolLM2-135M-Instruct")
    leaf = summary_of(out)["leaves"][CHICKADEE]
    assert leaf["teacher_calls"] > 0 and leaf["rejected"].get("no_documents", 0) == 0
    samples, rejected = read_jsonl(out / "knowledge.jsonl"), read_jsonl(out / "review" / "rejected.jsonl")
    judged = [r for r in rejected if r["stage"].startswith("judge") or r["stage"] == "dedup"]
    assert samples or judged, rejected  # the model's output got past parsing at least once
    for record in rejected:
        assert_names_its_document(record, CHICKADEE)
    for sample in samples:
        assert_names_its_document(sample, CHICKADEE)
        document = sample["provenance"]["document"]
        assert (document["repo"], document["commit"], document["path"]) == (SUMMIT_URL, COMMIT, "chickadee.md")
        # judged criteria scored 2 or 3; measured ones (relevance) have score 0 and their probability
        assert all(
            isinstance(c["score"], int) and (c["score"] >= 2 or (c["score"] == 0 and c["probability"] is not None))
            for c in sample["judge"]["criteria"]
        )
    contexts = read_jsonl(out / "knowledge_with_context.jsonl")
    assert [s["id"] for s in contexts] == [s["id"] for s in samples]
    assert all(s["messages"][1]["content"].startswith(s["provenance"]["context"]) for s in contexts)
