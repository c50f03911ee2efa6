"""LT008 symlink-escape: A leaf is not a symlink to a file outside the repository."""

ID = "LT008"
NAME = "symlink-escape"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "symlink"
SUMMARY = "A leaf is not a symlink to a file outside the repository."
WHY = "A link out of the repository can make CI read (and publish in the PR comment) files it must not."
HINT = "replace the symlink with the file itself"
DEFAULTS: dict = {}
