"""documents.fetch: credentials never shown, one cache folder per URL."""

from labtax.documents.fetch import _git_dir_for, redact


def test_redact_removes_user_and_password_only():
    assert redact("https://user:tok@github.com:8443/o/r.git") == "https://github.com:8443/o/r.git"
    assert redact("https://github.com/o/r") == "https://github.com/o/r"
    assert redact("git@github.com:o/r.git") == "git@github.com:o/r.git"


def test_each_url_has_its_own_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(tmp_path))
    a, b = _git_dir_for("https://x/a"), _git_dir_for("https://x/b")
    assert a != b and a.parent == b.parent == tmp_path / "documents" and a.suffix == ".git"


def test_matching_a_huge_tree_is_linear_and_stops_collecting_at_the_file_limit(monkeypatch):
    """20,000 matched files took a minute (each one compared with every file kept so far), 100,000 about 25
    minutes. A tree lists each path once: nothing to compare; files past the limit are counted, not kept,
    and only the kept ones are read."""
    from pathlib import Path

    from labtax import documents
    from labtax.documents import fetch

    tree = [fetch.TreeFile(f"docs/{i:06d}.md", "100644", f"{i:040x}", 10) for i in range(30_000)]
    tree += [fetch.TreeFile(f"links/{i:04d}.md", "120000", f"{i:040x}", 10) for i in range(1_000)]
    compared, read = [0], []

    def counting_eq(self, other):
        compared[0] += 1
        return self is other

    class Snap:
        commit, fetched = "c" * 40, True

        def files(self):
            return tree

        def read(self, blobs):
            read.append(len(blobs))
            return {b: b"# x\n" for b in blobs}

    monkeypatch.setattr(fetch.TreeFile, "__eq__", counting_eq)
    monkeypatch.setattr(fetch, "snapshot", lambda *a, **k: Snap())
    docs = documents.resolve(
        Path("."), {"repo": "https://example.com/d", "commit": "c" * 40, "patterns": ["**/*.md", "docs/*.md"]}
    )
    assert compared[0] < 1_000, compared[0]
    assert read == [documents.MAX_FILES] and len(docs.files) == documents.MAX_FILES
    messages = [p.message for p in docs.problems]
    assert "the patterns match 30000 files; at most 500 are read" in messages
    links = [m for m in messages if "is a symlink" in m]
    assert len(links) == 20 and any(m.startswith("and 980 more links") for m in messages), messages[-3:]


def test_cache_prune_never_follows_links_and_reports_exactly_what_it_removed(monkeypatch, tmp_path):
    """#24 item 21: a linked `*.git` entry was reported removed but stayed (rmtree refuses links, quietly); a
    `*.lock` link made labtax create a file outside the cache."""
    import json
    import subprocess

    from tests.conftest import run_labtax

    cache = tmp_path / "cache"
    monkeypatch.setenv("LABTAX_CACHE_DIR", str(cache))
    documents = cache / "documents"
    documents.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(outside / "theirs.git")], check=True)
    (outside / "keep.txt").write_text("not labtax's\n")
    subprocess.run(["git", "init", "-q", "--bare", str(documents / "real.git")], check=True)
    (documents / "linked.git").symlink_to(outside / "theirs.git", target_is_directory=True)
    (documents / "real.lock").symlink_to(outside / "created-by-labtax")
    (documents / "real.git" / "objects" / "outside").symlink_to(outside, target_is_directory=True)

    listed = run_labtax("cache", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["path"] for r in json.loads(listed.stdout)["repositories"]] == [str(documents / "real.git")]
    proc = run_labtax("cache", "prune")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert not (outside / "created-by-labtax").exists() and not (outside / "created-by-labtax").is_symlink()
    assert (outside / "theirs.git" / "HEAD").is_file() and (outside / "keep.txt").is_file()
    assert not (documents / "real.git").exists() and not (documents / "linked.git").is_symlink()
    assert "1 repository removed" in proc.stdout
    assert "linked.git" in proc.stdout and "link" in proc.stdout  # the link itself is removed, and said so
