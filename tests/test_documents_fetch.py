"""Knowledge documents in other git repositories: fetched with real git over a real protocol (git daemon
on 127.0.0.1), cached, read (Markdown and PDF), checked by lint (LT022), and InstructLab's own knowledge
leaves, unchanged, against their real document repository through a git `insteadOf` mirror."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from labtax import documents
from labtax.documents import fetch

from .conftest import SHARED, run_labtax
from .pdfs import make_pdf
from .test_diff import GIT_ENV, git

BUNDLE = SHARED / "corpus" / "knowledge-docs" / "Summit_knowledge.bundle"
HEAD_TAXONOMY = SHARED / "corpus" / "instructlab-taxonomy" / "head"
SUMMIT_URL = "https://github.com/juliadenham/Summit_knowledge"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    """`git daemon` serving one repository of documents on 127.0.0.1."""

    def __init__(self, base: Path):
        self.base, self.port, self.proc = base, free_port(), None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/docs.git"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--base-path={self.base}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("git daemon did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def served(tmp_path):
    """A documents repository (Markdown, a PDF, a symlink, two commits) behind git daemon."""
    work = tmp_path / "docs-work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "guide.md").write_text("# Guide\n\nThe first version of the guide.\n", encoding="utf-8")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    first = git(work, "rev-parse", "HEAD")
    (work / "guide.md").write_text(
        "# Guide\n\nApples grow on trees in orchards.\n\n## Pears\n\nPears ripen after picking.\n", encoding="utf-8"
    )
    (work / "manual.pdf").write_bytes(
        make_pdf(
            [
                [(20, "Installing"), (11, "Unpack the box and plug it in.")],
                [(20, "Cleaning"), (11, "Wipe the lens with a dry cloth.")],
            ]
        )
    )
    (work / "link.md").symlink_to("/etc/hostname")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "second")
    second = git(work, "rev-parse", "HEAD")
    base = tmp_path / "served"
    base.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(work), str(base / "docs.git"))
    daemon = Daemon(base)
    daemon.start()
    yield daemon, first, second
    daemon.stop()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "cache"


def knowledge_leaf(root: Path, repo: str, commit: str, patterns: list[str]) -> str:
    def qas(i: int) -> str:
        return "".join(
            f"      - question: Question {j} about fruit number {i}?\n        answer: Answer {j}.\n" for j in range(3)
        )

    examples = "".join(f"  - context: Context {i} about fruit.\n    questions_and_answers:\n{qas(i)}" for i in range(5))
    pattern_lines = "".join(f"    - '{p}'\n" for p in patterns)
    text = (
        "version: 3\ncreated_by: tester\ndomain: fruit\ndocument_outline: How fruit grows.\n"
        f"seed_examples:\n{examples}document:\n  repo: {repo}\n  commit: {commit}\n  patterns:\n{pattern_lines}"
    )
    folder = root / "knowledge/food/fruit"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qna.yaml").write_text(text, encoding="utf-8")
    (folder / "attribution.txt").write_text("Title of work: fruit\n", encoding="utf-8")
    return "knowledge/food/fruit/qna.yaml"


def lint_documents(root: Path, *args: str) -> tuple[int, list[dict]]:
    proc = run_labtax(
        "lint", "--format", "json", "--check-documents", "--select", "LT022", *args, cwd=root, timeout=120
    )
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def test_a_pinned_commit_is_fetched_shallow_and_read_markdown_and_pdf(served, cache):
    daemon, _, second = served
    chunks, note = documents.chunks_for(
        Path("."), {"repo": daemon.url, "commit": second, "patterns": ["*.md", "*.pdf"]}, 350
    )
    assert "link.md is a symlink" in note  # a committed link is never followed, and says so
    by_source = {c.source: c for c in chunks if c.source == "guide.md"}
    assert by_source["guide.md"].commit == second and by_source["guide.md"].id.startswith(f"guide.md@{second}#0-")
    pdf = [c for c in chunks if c.source == "manual.pdf"]
    assert [(c.page, c.heading) for c in pdf] == [(1, "Installing"), (2, "Cleaning")]
    assert "Wipe the lens" in pdf[1].text
    (git_dir,) = (cache / "documents").glob("*.git")
    assert (git_dir / "shallow").read_text().split() == [second]  # only the pinned commit was fetched


def test_branch_names_and_short_shas_resolve_to_the_full_sha(served):
    daemon, first, second = served
    assert documents.resolve(Path("."), {"repo": daemon.url, "commit": "main", "patterns": ["*.md"]}).commit == second
    docs = documents.resolve(Path("."), {"repo": daemon.url, "commit": first[:8], "patterns": ["guide.md"]})
    assert docs.commit == first and docs.files == {"guide.md": b"# Guide\n\nThe first version of the guide.\n"}


def test_lint_finds_an_unknown_commit_and_patterns_matching_nothing_at_their_lines(served, tmp_path):
    daemon, _, second = served
    root = tmp_path / "taxonomy"
    leaf = knowledge_leaf(root, daemon.url, "deadbeef" * 5, ["*.md"])
    code, findings = lint_documents(root)
    assert code == 1 and [(f["rule_id"], f["line"], f["level"]) for f in findings] == [("LT022", 48, "error")]
    assert f"commit '{'deadbeef' * 5}' is not in {daemon.url}" in findings[0]["message"]
    knowledge_leaf(root, daemon.url, second, ["*.md", "missing/*.txt"])
    code, findings = lint_documents(root)
    assert code == 1 and [(f["line"], f["message"]) for f in findings if f["level"] == "error"] == [
        (50, f"link.md is a symlink in {daemon.url}; documents must be plain files"),
        (51, f"pattern 'missing/*.txt' matches no file in {daemon.url} at {second[:12]}"),
    ]
    knowledge_leaf(root, daemon.url, second, ["guide.md", "manual.pdf"])
    assert lint_documents(root) == (0, [])
    assert leaf == "knowledge/food/fruit/qna.yaml"


def test_an_unreachable_host_is_not_checked_rather_than_an_error(tmp_path):
    root = tmp_path / "taxonomy"
    knowledge_leaf(root, f"git://127.0.0.1:{free_port()}/nothing.git", "a" * 40, ["*.md"])
    code, findings = lint_documents(root)
    assert code == 0 and [(f["level"], f["message"].split(":")[0]) for f in findings] == [
        ("warning", "documents not checked")
    ]
    proc = run_labtax("lint", "--format", "json", "--select", "LT022", cwd=root)  # outside CI, off by default
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []


def test_two_processes_fetch_at_once_then_the_cache_serves_with_the_server_stopped(served, tmp_path, cache):
    daemon, _, second = served
    root = tmp_path / "taxonomy"
    knowledge_leaf(root, daemon.url, second, ["guide.md", "manual.pdf"])
    exe = [str(Path(os.sys.executable).parent / "labtax"), "lint", "--check-documents", "--select", "LT022"]
    procs = [
        subprocess.Popen(exe, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(list((cache / "documents").glob("*.git"))) == 1
    daemon.stop()
    assert lint_documents(root, "--offline") == (0, [])
    assert lint_documents(root) == (0, [])  # a cached full SHA needs no network at all
    chunks, note = documents.chunks_for(
        root, {"repo": daemon.url, "commit": second, "patterns": ["guide.md"]}, 350, offline=True
    )
    assert note is None and "Apples grow on trees" in chunks[0].text


def test_offline_with_an_empty_cache_says_what_to_do(served):
    daemon, _, second = served
    docs = documents.resolve(Path("."), {"repo": daemon.url, "commit": second, "patterns": ["*.md"]}, offline=True)
    assert (
        docs.problems[0].unreachable and "not in the cache and --offline forbids fetching" in docs.problems[0].message
    )


def test_credentials_in_the_url_never_reach_a_message(served, capfd):
    _daemon, _, _ = served
    url = f"http://user:s3cr3t-token@127.0.0.1:{free_port()}/docs.git"
    docs = documents.resolve(Path("."), {"repo": url, "commit": "b" * 40, "patterns": ["*.md"]})
    assert docs.problems and all("s3cr3t" not in p.message for p in docs.problems)
    assert "s3cr3t" not in docs.repo and fetch.redact(url) == f"http://127.0.0.1:{url.rsplit(':', 1)[1]}"
    assert "s3cr3t" not in "".join(capfd.readouterr())


def test_cache_list_and_prune(served, cache):
    daemon, _, second = served
    documents.resolve(Path("."), {"repo": daemon.url, "commit": second, "patterns": ["*.md"]})
    listed = json.loads(run_labtax("cache", "list", "--format", "json", check=True).stdout)
    assert [r["url"] for r in listed["repositories"]] == [daemon.url]
    assert "1 repository removed" in run_labtax("cache", "prune", check=True).stdout
    assert list((cache / "documents").glob("*.git")) == []


def test_a_broken_or_encrypted_pdf_is_a_located_finding(tmp_path):
    root = tmp_path / "taxonomy"
    docs = root / "documents/fruit"
    docs.mkdir(parents=True)
    (docs / "locked.pdf").write_bytes(make_pdf([[(11, "secret")]], encrypted=True))
    (docs / "broken.pdf").write_bytes(make_pdf([[(11, "text")]])[:150])
    chunks, note = documents.chunks_for(
        root, {"repo": "./documents/fruit", "commit": "HEAD", "patterns": ["*.pdf"]}, 350
    )
    assert chunks == []
    assert (
        "documents/fruit/locked.pdf: the PDF is encrypted" in note
        and "documents/fruit/broken.pdf: the PDF cannot be read" in note
    )


@pytest.fixture
def summit_mirror(tmp_path, monkeypatch) -> Path:
    """InstructLab's real documents repository, reached by its real URL through a git insteadOf mirror."""
    if not BUNDLE.is_file():
        pytest.fail(f"shared corpus missing at {BUNDLE}")
    mirror = tmp_path / "Summit_knowledge"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(BUNDLE), str(mirror)], check=True, env={**os.environ, **GIT_ENV}
    )
    config = tmp_path / "gitconfig"
    config.write_text(f'[url "file://{mirror}"]\n\tinsteadOf = {SUMMIT_URL}.git\n\tinsteadOf = {SUMMIT_URL}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    return mirror


def test_instructlab_knowledge_leaves_unchanged_lint_and_chunk_from_their_real_documents(summit_mirror):
    code, findings = lint_documents(HEAD_TAXONOMY, "knowledge")
    assert (code, findings) == (0, [])
    leaf = HEAD_TAXONOMY / "knowledge/science/animals/birds/black_capped_chickadee/qna.yaml"
    import yaml

    document = yaml.safe_load(leaf.read_text())["document"]
    chunks, note = documents.chunks_for(HEAD_TAXONOMY, document, 350)
    assert note is None and len(chunks) > 5
    assert {c.source for c in chunks} == {"chickadee.md"} and chunks[
        0
    ].commit == "5f7158a5ce83c4ff493bfe341fe31ecad64ff697"
    assert chunks[0].repo == SUMMIT_URL and chunks[0].heading == "Black-capped chickadee"
    shutil.rmtree(summit_mirror)  # the mirror is gone: the cache alone serves the pinned commit
    assert documents.chunks_for(HEAD_TAXONOMY, document, 350)[0] == chunks


# --- where document.repo may point (#24 item 2) ---------------------------------------------------------


@pytest.fixture
def local_repository(served, tmp_path) -> Path:
    """The served repository's bare copy, reached as a path on this machine instead of through git daemon."""
    return tmp_path / "served" / "docs.git"


def test_a_repository_on_this_machine_is_refused_unless_the_user_allows_it(
    served, local_repository, tmp_path, monkeypatch
):
    """An absolute path, `../x` or `file://` in a pull request's leaf would send any repository on the
    machine (CI's, the user's) to the teacher and the outputs. Refused at the repo key, by lint and generate;
    LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS=1, set outside the repository, allows it."""
    _, _, second = served
    root = tmp_path / "taxonomy"
    for repo in (str(local_repository), f"file://{local_repository}", "../served/docs.git", "served/docs.git"):
        knowledge_leaf(root, repo, second, ["guide.md"])
        proc = run_labtax("lint", "--format", "json", cwd=root)  # offline: the pre-commit hook sees it too
        findings = json.loads(proc.stdout)["findings"]
        assert proc.returncode == 1 and [(f["rule_id"], f["line"], f["col"]) for f in findings] == [("LT017", 47, 9)], (
            repo,
            findings,
        )
        assert f"document.repo '{repo}' is a repository on this machine" in findings[0]["message"]
        assert "LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS=1" in findings[0]["message"]
        code, checked = lint_documents(root)  # LT022 leaves it to LT017: one finding, no fetch
        assert (code, checked) == (0, [])
        chunks, note = documents.chunks_for(root, {"repo": repo, "commit": second, "patterns": ["guide.md"]}, 350)
        assert chunks == [] and "is a repository on this machine" in note
    assert not (tmp_path / "cache" / "documents").exists()  # nothing was fetched
    monkeypatch.setenv("LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS", "1")
    knowledge_leaf(root, f"file://{local_repository}", second, ["guide.md"])
    assert run_labtax("lint", cwd=root).returncode == 0
    chunks, note = documents.chunks_for(
        root, {"repo": f"file://{local_repository}", "commit": second, "patterns": ["guide.md"]}, 350
    )
    assert note is None and "Apples grow on trees" in chunks[0].text


@pytest.mark.parametrize(
    "repo",
    [
        "ext::sh -c touch% {marker}",
        "fd::17",
        "transport::https://example.com/x.git",
        "ssh://-oProxyCommand=touch% {marker}/x",
    ],
)
def test_git_transports_that_run_programs_are_refused_by_labtax(tmp_path, monkeypatch, repo):
    """`<transport>::address` (ext:: runs a command, fd:: reads a descriptor) and an ssh host that is an
    option are refused by labtax itself, even where local repositories are allowed and git's config would
    allow the transport."""
    marker = tmp_path / "ran"
    repo = repo.format(marker=marker)
    monkeypatch.setenv("LABTAX_ALLOW_LOCAL_DOCUMENT_REPOS", "1")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    chunks, note = documents.chunks_for(tmp_path, {"repo": repo, "commit": "a" * 40, "patterns": ["*.md"]}, 350)
    assert chunks == [] and "labtax does not fetch it" in note, note
    assert not marker.exists()
    root = tmp_path / "taxonomy"
    knowledge_leaf(root, f"'{repo}'", "a" * 40, ["*.md"])
    findings = json.loads(run_labtax("lint", "--format", "json", cwd=root).stdout)["findings"]
    assert [(f["rule_id"], f["line"], f["col"]) for f in findings] == [("LT017", 47, 9)], findings


@pytest.mark.parametrize(
    "repo",
    [
        "https://github.com/org/docs",
        "http://mirror.example/docs.git",
        "ssh://git@github.com/org/docs.git",
        "git@github.com:pavankumarag/ceph-instructlab-taxonomy-data.git",
        "git://127.0.0.1:9418/docs.git",
    ],
)
def test_remote_urls_are_fetched(repo):
    assert fetch.refusal(repo) is None


def test_a_hung_transport_is_cut_off_by_one_short_deadline(tmp_path, monkeypatch):
    """A server that accepts and never answers held each git call for 300 s (two calls per fetch). One
    deadline for the whole fetch of a repository; its git processes are killed with it."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    monkeypatch.setenv("LABTAX_GIT_TIMEOUT", "2")
    url = f"git://127.0.0.1:{server.getsockname()[1]}/docs.git"
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(documents.resolve(Path("."), {"repo": url, "commit": "a" * 40, "patterns": []})),
        daemon=True,
    )
    try:
        worker.start()
        worker.join(60)  # generous: the deadline is 2 s, the old per-call limit 300 s
        assert result, "the fetch was still waiting after 60 s"
    finally:
        server.close()
    (problem,) = result[0].problems
    assert problem.unreachable and "took over 2 s" in problem.message


LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def test_a_git_lfs_pointer_is_a_finding_naming_lfs_not_document_text(tmp_path):
    """#24 item 18: a pointer committed in place of the file went to the teacher as a `.md` document's text
    (and lint was clean), or read as a broken PDF."""
    from labtax.documents.read import ReadError, read

    for path in ("guide.md", "paper.pdf", "notes.txt"):
        with pytest.raises(ReadError) as caught:
            read(path, LFS_POINTER)
        assert "Git LFS pointer" in str(caught.value) and "commit the document itself" in str(caught.value), path
    root = tmp_path / "taxonomy"
    docs = root / "documents/fruit"
    docs.mkdir(parents=True)
    (docs / "guide.md").write_bytes(LFS_POINTER)
    (docs / "paper.pdf").write_bytes(LFS_POINTER)
    chunks, note = documents.chunks_for(
        root, {"repo": "./documents/fruit", "commit": "HEAD", "patterns": ["*.md", "*.pdf"]}, 350
    )
    assert chunks == [] and "oid sha256" not in (note or "")
    assert (
        "documents/fruit/guide.md: a Git LFS pointer" in note and "documents/fruit/paper.pdf: a Git LFS pointer" in note
    )
    assert read("guide.md", b"# Guide\n\nversion https://git-lfs.github.com/spec/v1 is a URL in prose.\n")
