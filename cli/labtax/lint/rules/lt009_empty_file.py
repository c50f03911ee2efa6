"""LT009 empty-file: The file is not empty."""

ID = "LT009"
NAME = "empty-file"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "empty"
SUMMARY = "The file is not empty."
WHY = "An empty leaf teaches nothing and is usually an unfinished commit."
HINT = "fill in the leaf (labtax new scaffolds one) or delete it"
DEFAULTS: dict = {}
