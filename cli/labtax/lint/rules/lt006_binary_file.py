"""LT006 binary-file: The file is text, not binary."""

ID = "LT006"
NAME = "binary-file"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "binary"
SUMMARY = "The file is text, not binary."
WHY = "A binary file named qna.yaml is a mistake that other tools misreport."
HINT = "replace it with a YAML text file"
DEFAULTS: dict = {}
