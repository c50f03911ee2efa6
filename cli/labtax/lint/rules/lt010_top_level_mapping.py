"""LT010 top-level-mapping: The top level of the file is a mapping of keys to values."""

ID = "LT010"
NAME = "top-level-mapping"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "not-mapping"
SUMMARY = "The top level of the file is a mapping of keys to values."
WHY = "Every field lives at the top level; a list or a bare string there is not a leaf."
HINT = "start the file with 'version: 3' and the other fields as keys"
DEFAULTS: dict = {}
