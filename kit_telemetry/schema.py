"""Checking tool arguments against a tool's JSON Schema (the subset tools use).

Checked: ``type`` (one or a list), ``properties``, ``required``, ``additionalProperties``
(``false`` or a schema), ``items``, ``enum``, ``const``, ``minimum``/``maximum``,
``minLength``/``maxLength``, ``minItems``/``maxItems``, ``anyOf``/``oneOf``. Other keywords
are not checked: a tool's handler must still treat its arguments with care.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "arguments") -> list[str]:
    """Every way ``value`` breaks ``schema``, as readable lines; empty when it conforms."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return [f"{path} must be {' or '.join(map(str, kinds))}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path} must be one of {schema['enum']!r}, got {value!r}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path} must be {schema['const']!r}, got {value!r}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            matching = sum(not schema_errors(value, option, path) for option in options)
            if matching == 0 or (key == "oneOf" and matching > 1):
                errors.append(f"{path} matches {matching} of the {key} schemas")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    elif isinstance(value, (list, tuple)):
        errors += _bounds(len(value), schema, "minItems", "maxItems", f"{path} length")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                errors += schema_errors(item, items, f"{path}[{i}]")
    elif isinstance(value, str):
        errors += _bounds(len(value), schema, "minLength", "maxLength", f"{path} length")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        errors += _bounds(value, schema, "minimum", "maximum", path)
    return errors


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            errors.append(f"{path}.{name} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            errors += schema_errors(item, properties[name], f"{path}.{name}")
        elif extra is False:
            errors.append(f"{path}.{name} is not allowed (allowed: {', '.join(properties)})")
        elif isinstance(extra, Mapping):
            errors += schema_errors(item, extra, f"{path}.{name}")
    return errors


def _bounds(value: float, schema: Mapping[str, Any], low: str, high: str, path: str) -> list[str]:
    errors = []
    if isinstance(schema.get(low), (int, float)) and value < schema[low]:
        errors.append(f"{path} must be at least {schema[low]}, got {value}")
    if isinstance(schema.get(high), (int, float)) and value > schema[high]:
        errors.append(f"{path} must be at most {schema[high]}, got {value}")
    return errors


def _is_type(value: Any, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, object))


def _json_type(value: Any) -> str:
    for name in _TYPES:
        if name != "integer" and _is_type(value, name):
            return name
    return type(value).__name__
