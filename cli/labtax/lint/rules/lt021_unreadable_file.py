"""LT021 unreadable-file: the leaf file can be opened and read."""

ID = "LT021"
NAME = "unreadable-file"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "unreadable"
SUMMARY = "The file can be opened and read (no dangling symlink, no missing permission)."
WHY = "A leaf no tool can read contributes nothing, and other tools fail on it with a traceback."
HINT = "check that the file exists, is a regular file and is readable"
DEFAULTS: dict = {}
