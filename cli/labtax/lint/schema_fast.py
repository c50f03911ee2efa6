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


def _ref(schema: dict, instance, resolve, base: str) -> bool:
    if "unevaluatedProperties" in schema:
        raise _Unsure  # properties evaluated through the $ref would count too
    target = resolve(urljoin(base, schema["$ref"]))
    if target is None:
        raise _Unsure
    return _valid(target, instance, resolve, urljoin(base, schema["$ref"]))


def _type(schema: dict, instance, resolve, base: str) -> bool:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return any(_is_type(instance, t) for t in types)


def _const(schema: dict, instance, resolve, base: str) -> bool:
    const = schema["const"]
    if not isinstance(const, (str, int)) or isinstance(const, bool):
        raise _Unsure
    return isinstance(instance, (str, int, float)) and _key(instance) == _key(const)


def _required(schema: dict, instance, resolve, base: str) -> bool:
    return not isinstance(instance, dict) or all(name in instance for name in schema["required"])


def _properties(schema: dict, instance, resolve, base: str) -> bool:
    if not isinstance(instance, dict):
        return True
    return all(
        _valid(sub, instance[name], resolve, base) for name, sub in schema["properties"].items() if name in instance
    )


def _unevaluated_properties(schema: dict, instance, resolve, base: str) -> bool:
    unevaluated = schema["unevaluatedProperties"]
    if not isinstance(instance, dict) or unevaluated is True:
        return True
    if unevaluated is not False:
        raise _Unsure
    return all(name in schema.get("properties", {}) for name in instance)


def _items(schema: dict, instance, resolve, base: str) -> bool:
    return not isinstance(instance, list) or all(_valid(schema["items"], item, resolve, base) for item in instance)


def _min_items(schema: dict, instance, resolve, base: str) -> bool:
    return not isinstance(instance, list) or len(instance) >= schema["minItems"]


def _unique_items(schema: dict, instance, resolve, base: str) -> bool:
    if not isinstance(instance, list) or schema["uniqueItems"] is not True:
        return True
    return len({_key(item) for item in instance}) == len(instance)


def _min_length(schema: dict, instance, resolve, base: str) -> bool:
    return not isinstance(instance, str) or len(instance) >= schema["minLength"]


# Keyword -> its check: a supported keyword without an implementation cannot exist. $ref goes first (as
# before: a failed reference decides), the rest in the order jsonschema would report them.
KEYWORDS = {
    "$ref": _ref,
    "type": _type,
    "const": _const,
    "required": _required,
    "properties": _properties,
    "unevaluatedProperties": _unevaluated_properties,
    "items": _items,
    "minItems": _min_items,
    "uniqueItems": _unique_items,
    "minLength": _min_length,
}
SUPPORTED = ANNOTATIONS | KEYWORDS.keys()


def _valid(schema, instance, resolve, base: str) -> bool:
    if schema is True:
        return True
    if not isinstance(schema, dict) or not SUPPORTED.issuperset(schema):
        raise _Unsure
    base = urljoin(base, schema["$id"]) if "$id" in schema else base
    return all(check(schema, instance, resolve, base) for keyword, check in KEYWORDS.items() if keyword in schema)
