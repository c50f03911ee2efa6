"""A quick "is this leaf valid?" for the few JSON Schema keywords labtax's schemas use.

Almost every leaf is valid, and proving that does not need jsonschema: importing it costs ~50 ms (a third
of a one-file `labtax lint`) and its general machinery ~1 ms per leaf. This answers True (valid), False
(invalid) or None (a keyword or value it does not handle); only True is trusted, anything else goes to
jsonschema, which also writes the error messages. So a mistake here could only hide an error, and
tests/test_lint_speed_paths.py compares the two verdicts on many broken variants of real leaves.
"""

from __future__ import annotations

from urllib.parse import urljoin

ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "deprecated", "examples", "default", "$comment"})
SUPPORTED = ANNOTATIONS | {
    "$ref",
    "type",
    "const",
    "required",
    "properties",
    "unevaluatedProperties",
    "items",
    "minItems",
    "minLength",
    "uniqueItems",
}


class _Unsure(Exception):
    """Outside what this checker handles: let jsonschema decide."""


def is_valid(schema: dict, instance, resolve) -> bool | None:
    """True/False when sure; None when jsonschema must decide. `resolve(uri)` returns the schema for a $ref."""
    try:
        return _valid(schema, instance, resolve, schema.get("$id", ""))
    except _Unsure:
        return None


def _is_type(instance, name: str) -> bool:
    """jsonschema's draft 2020-12 type checks (a bool is not a number; 3.0 is an integer)."""
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "integer":
        return (isinstance(instance, int) and not isinstance(instance, bool)) or (
            isinstance(instance, float) and instance.is_integer()
        )
    if name == "number":
        return isinstance(instance, (int, float)) and not isinstance(instance, bool)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    raise _Unsure


def _key(value):
    """A hashable form equal exactly when jsonschema's `equal` says equal (for plain JSON-like data)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    if isinstance(value, list):
        return ("list", tuple(_key(v) for v in value))
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unsure
        return ("dict", frozenset((k, _key(v)) for k, v in value.items()))
    raise _Unsure


def _valid(schema, instance, resolve, base: str) -> bool:
    if schema is True:
        return True
    if not isinstance(schema, dict) or not SUPPORTED.issuperset(schema):
        raise _Unsure
    base = urljoin(base, schema["$id"]) if "$id" in schema else base
    if "$ref" in schema:
        if "unevaluatedProperties" in schema:
            raise _Unsure  # properties evaluated through the $ref would count too
        target = resolve(urljoin(base, schema["$ref"]))
        if target is None:
            raise _Unsure
        if not _valid(target, instance, resolve, urljoin(base, schema["$ref"])):
            return False
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, t) for t in types):
            return False
    if "const" in schema:
        const = schema["const"]
        if not isinstance(const, (str, int)) or isinstance(const, bool):
            raise _Unsure
        if not isinstance(instance, (str, int, float)) or _key(instance) != _key(const):
            return False
    if isinstance(instance, dict):
        if any(name not in instance for name in schema.get("required", ())):
            return False
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in instance and not _valid(sub, instance[name], resolve, base):
                return False
        unevaluated = schema.get("unevaluatedProperties", True)
        if unevaluated is False:
            if any(name not in properties for name in instance):
                return False
        elif unevaluated is not True:
            raise _Unsure
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            return False
        if "items" in schema and not all(_valid(schema["items"], item, resolve, base) for item in instance):
            return False
        if schema.get("uniqueItems") is True and len({_key(item) for item in instance}) != len(instance):
            return False
    return not (isinstance(instance, str) and len(instance) < schema.get("minLength", 0))
