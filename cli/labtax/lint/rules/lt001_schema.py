"""LT001 schema: the leaf matches the JSON Schema for its kind and version."""

from labtax.lint import schema

ID = "LT001"
NAME = "schema"
LEVEL = "error"
SCOPE = "leaf"
SUMMARY = "The leaf matches the JSON Schema (schema/vN/<tree>.json) for its kind and its own `version`."
WHY = "Generation and training read these fields; a missing or mistyped field breaks them later and silently."
HINT = "fix the field named in the message; schema/ shows the expected shape"
DEFAULTS: dict = {"version": "own"}  # "latest": every file at the newest schema (InstructLab's CI on changed files)


def check(leaf, ctx):
    version = max(schema.supported_versions()) if ctx.options["version"] == "latest" else leaf.version
    for error in schema.validate(leaf.kind, version, leaf.data):
        line, col = leaf.pos(error.node_path, key=error.on_key)
        yield ctx.finding(leaf.path, line, col, error.message, error.hint)
