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
