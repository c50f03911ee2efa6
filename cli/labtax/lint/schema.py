"""JSON Schemas for leaves: loaded from schema/ (data, shipped in the wheel), validated, explained.

jsonschema is imported lazily here, the only place that needs it, so commands that never validate
don't pay its import time.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from labtax.schemadir import SCHEMA_DIR
from labtax.taxonomy.kinds import KIND_TREE


@dataclass(frozen=True)
class SchemaError:
    node_path: tuple
    message: str
    hint: str
    on_key: bool = False  # point at the key (unexpected field) rather than the value


def supported_versions() -> list[int]:
    return sorted({version for version, _ in _shipped()})


@functools.cache
def _shipped() -> dict[tuple[int, str], dict]:
    """Every shipped schema, read once: (version, tree) -> contents."""
    return {
        (int(path.parent.name[1:]), path.stem): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("v*/*.json"))
        if path.parent.name[1:].isdigit()
    }


@functools.cache
def _registry():
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources = [(c["$id"], Resource.from_contents(c, default_specification=DRAFT202012)) for c in _shipped().values()]
    return Registry().with_resources(resources)


def schema_for(kind: str, version: int) -> dict | None:
    return _shipped().get((version, KIND_TREE[kind]))


@functools.cache
def _schemas_by_id() -> dict:
    """Every shipped schema by its $id, so the quick check (schema_fast.py) can follow $ref."""
    return {contents["$id"]: contents for contents in _shipped().values()}


@functools.cache
def _validator(kind: str, version: int):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema_for(kind, version), registry=_registry())


def _name(path) -> str:
    return (
        str(path[-1])
        if path and isinstance(path[-1], str)
        else (f"{path[-2]}[{path[-1]}]" if len(path) > 1 else "item" if path else "the file")
    )


def _describe(value) -> str:
    kinds = {
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }
    return kinds.get(type(value), type(value).__name__)


def _explain(error) -> list[SchemaError]:
    """Turn one jsonschema error into plain-language messages pointing at the right node."""
    path = tuple(error.absolute_path)
    v, value, name = error.validator, error.validator_value, _name(tuple(error.absolute_path))
    if v == "required":  # jsonschema reports each missing field as its own error, naming it in the message
        missing = [
            k
            for k in value
            if isinstance(error.instance, dict) and k not in error.instance and repr(k) in error.message
        ]
        where = f" in {name}" if path else ""
        return [
            SchemaError(
                path, f"missing required field '{k}'{where}", f"add '{k}:' to {'this item' if path else 'the file'}"
            )
            for k in missing
        ]
    if v == "unevaluatedProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        return [
            SchemaError(
                path + (k,),
                f"unexpected field '{k}'",
                f"remove it or rename it to one of: {', '.join(sorted(allowed))}",
                on_key=True,
            )
            for k in extra
        ]
    if v == "minItems":
        return [
            SchemaError(
                path,
                f"{name} needs at least {value} items, found {len(error.instance)}",
                f"add {value - len(error.instance)} more",
            )
        ]
    if v == "uniqueItems":
        seen, dup = [], None
        for i, item in enumerate(error.instance):
            if item in seen:
                dup = i
                break
            seen.append(item)
        at = path + (dup,) if dup is not None else path
        return [
            SchemaError(
                at,
                f"{name} has a duplicate item"
                + (f" (item {dup + 1} repeats item {seen.index(error.instance[dup]) + 1})" if dup is not None else ""),
                "remove the duplicate or change it",
            )
        ]
    if v == "minLength":
        return [SchemaError(path, f"{name} must not be empty", f"write a value for {name}")]
    if v == "type":
        wanted = {
            "string": "text",
            "integer": "a whole number",
            "array": "a list",
            "object": "a mapping",
            "number": "a number",
            "boolean": "true/false",
        }
        return [
            SchemaError(
                path,
                f"{name} must be {wanted.get(value, value)}, found {_describe(error.instance)}",
                "quote text values; use a list or mapping where the schema asks for one",
            )
        ]
    if v == "const":
        return [SchemaError(path, f"{name} must be {value!r}, found {error.instance!r}", f"set {name}: {value}")]
    return [SchemaError(path, error.message[-200:], "see the schema in schema/ for the expected shape")]


def validate(kind: str, version: int, data: dict) -> list[SchemaError]:
    """Every schema problem of a leaf, explained; an unsupported version is one problem at `version`."""
    schema = schema_for(kind, version)
    if schema is None:
        versions = ", ".join(map(str, supported_versions()))
        return [
            SchemaError(
                ("version",), f"unsupported {kind} version {version}", f"use one of the supported versions: {versions}"
            )
        ]
    if schema.get("deprecated"):
        return [
            SchemaError(
                ("version",), schema["description"], "convert the file to version 3 (see README: knowledge leaves)"
            )
        ]
    from labtax.lint.schema_fast import is_valid

    if is_valid(schema, data, _schemas_by_id().get):
        return []  # the usual case, proved without importing jsonschema; errors are always jsonschema's
    errors = sorted(_validator(kind, version).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [explained for error in errors for explained in _explain(error)]
