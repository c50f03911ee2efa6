"""LT003 duplicate-key: No mapping repeats a key."""

ID = "LT003"
NAME = "duplicate-key"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "duplicate-key"
SUMMARY = "No mapping repeats a key."
WHY = "YAML keeps only the last duplicate, so earlier content silently disappears."
HINT = "remove or rename one of the repeated keys"
DEFAULTS: dict = {}
