"""LT005 encoding: The file is valid UTF-8 text."""

ID = "LT005"
NAME = "encoding"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "encoding"
SUMMARY = "The file is valid UTF-8 text."
WHY = "Other encodings turn into mojibake in generated data and break tools that assume UTF-8."
HINT = "re-save the file as UTF-8"
DEFAULTS: dict = {}
