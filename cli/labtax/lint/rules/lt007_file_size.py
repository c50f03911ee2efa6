"""LT007 file-size: The file is no larger than max-file-bytes (default 1 MiB)."""

ID = "LT007"
NAME = "file-size"
LEVEL = "error"
SCOPE = "load"
PROBLEM = "size"
SUMMARY = "The file is no larger than max-file-bytes (default 1 MiB)."
WHY = "Seed files are small by nature; a huge one is a mistake or an attack, and slows every tool."
HINT = "shorten the file; long source material belongs in documents, not in qna.yaml"
DEFAULTS: dict = {}
