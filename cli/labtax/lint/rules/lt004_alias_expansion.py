"""LT004 alias-expansion: The document stays small once YAML aliases are expanded (no alias bombs, no absurd nesting)."""

ID = "LT004"
NAME = "alias-expansion"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "alias-expansion"
SUMMARY = "The document stays small once YAML aliases are expanded (no alias bombs, no absurd nesting)."
WHY = "A few lines of aliases can expand to billions of nodes and exhaust memory in every tool that reads the file."
HINT = "write the content out instead of using anchors and aliases"
DEFAULTS: dict = {}
