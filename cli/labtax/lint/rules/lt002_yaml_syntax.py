"""LT002 yaml-syntax: The file parses as YAML."""

ID = "LT002"
NAME = "yaml-syntax"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "syntax"
SUMMARY = "The file parses as YAML."
WHY = "A file that does not parse cannot be checked or used; InstructLab's tooling crashes on these instead of pointing at the line."
HINT = "fix the YAML syntax at the given line and column (indentation, quoting, a stray colon)"
DEFAULTS: dict = {}
