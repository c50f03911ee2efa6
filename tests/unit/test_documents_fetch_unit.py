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
