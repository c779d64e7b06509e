"""Reading the wire format: serde's derive rules for scalars, JSON values, enums and structs.

Every reader takes plain data (what :func:`mofa_kernel._wire._json.parse`
gives, or what a caller built) and returns the value, or raises
:class:`~mofa_kernel._wire._errors.Invalid` or a cattrs validation error
whose notes give the path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from cattrs.errors import BaseValidationError, ClassValidationError, IterableValidationError

from mofa_kernel._metadata import JSONValue

from ._errors import Invalid, describe, field_note, index_note, noted, quote
from ._limits import I64_MIN, MAX_DEPTH, SURROGATE, U32_MAX, U64_MAX, OutOfRange

__all__ = [
    "Field",
    "Hook",
    "big_int",
    "read_bool",
    "read_bytes",
    "read_float",
    "read_int",
    "read_opt_str",
    "read_path",
    "read_seconds",
    "read_settings",
    "read_str",
    "read_strings",
    "read_u32",
    "struct_hook",
    "variant_hook",
]

#: A one-argument reader or writer.
Hook = Callable[[Any], Any]


def read_str(value: object) -> str:
    """A string (Rust ``String``): no lone surrogates."""
    if isinstance(value, str):
        if not value.isascii() and SURROGATE.search(value):
            raise Invalid("string holds a lone surrogate, which is not valid Unicode")
        return str.__str__(value)
    raise Invalid(f"expected a string, got {describe(value)}")


def read_opt_str(value: object) -> str | None:
    """An ``Option<String>``: a string or ``null``."""
    return None if value is None else read_str(value)


def read_bool(value: object) -> bool:
    """A boolean, never a number."""
    if isinstance(value, bool):
        return value
    raise Invalid(f"expected a boolean, got {describe(value)}")


def read_int(value: object) -> int:
    """An integer, never a boolean or a float."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise Invalid(f"expected an integer, got {describe(value)}")


def read_u32(value: object) -> int:
    """A Rust ``u32``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U32_MAX:
        return int(value)
    raise Invalid(f"expected an integer in 0..={U32_MAX}, got {describe(value)}")


def read_float(value: object) -> float:
    """A finite number (Rust ``f64``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    raise Invalid(f"expected a number, got {describe(value)}")


def read_seconds(value: object) -> float:
    """A ``Duration`` as a non-negative number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return number
    raise Invalid(f"expected a non-negative number of seconds, got {describe(value)}")


def read_path(value: object) -> Path:
    """A path, written as a string."""
    if isinstance(value, str):
        return Path(read_str(value))
    raise Invalid(f"expected a path as a string, got {describe(value)}")


def read_strings(value: object) -> tuple[str, ...]:
    """A ``Vec<String>``; every bad element is reported with its index."""
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"expected an array of strings, got {describe(value)}")
    out: list[str] = []
    errors: list[Exception] = []
    for index, item in enumerate(value):
        try:
            out.append(read_str(item))
        except Invalid as exc:
            errors.append(noted(exc, index_note(index, str)))
    if errors:
        raise IterableValidationError("While structuring an array of strings", errors, tuple)
    return tuple(out)


def read_bytes(value: object) -> bytes:
    """A ``Vec<u8>``: an array of integers 0..=255."""
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"expected an array of bytes (integers 0..=255), got {describe(value)}")
    errors: list[Exception] = [
        noted(Invalid(f"expected an integer in 0..=255, got {describe(item)}"), index_note(i, int))
        for i, item in enumerate(value)
        if not (isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255)
    ]
    if errors:
        raise IterableValidationError("While structuring an array of bytes", errors, bytes)
    return bytes(value)


def big_int(value: int) -> float:
    """An integer beyond i64/u64 as the f64 serde_json reads it; ``Invalid`` beyond f64."""
    # serde_json has no integer beyond i64/u64; it reads such a number as an f64.
    try:
        return float(value)
    except OverflowError:
        raise Invalid("integer is beyond the range of a JSON number (f64)") from None


def _json_value(value: object, depth: int) -> JSONValue:
    """Check ``value`` as JSON data, as ``serde_json::Value`` holds it; ``depth`` is its nesting."""
    if value is None or value is True or value is False:
        return value
    if type(value) is str:
        return read_str(value)
    if type(value) is int:
        return value if I64_MIN <= value <= U64_MAX else big_int(value)
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple)):
        if depth > MAX_DEPTH:
            raise Invalid(
                f"nested deeper than {MAX_DEPTH} arrays and objects (serde_json's recursion limit)"
            )
        if isinstance(value, Mapping):
            return _json_object(value, depth)
        return _json_array(value, depth)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _json_value(int(value), depth)
    if isinstance(value, float):
        return _json_value(float(value), depth)
    if isinstance(value, str):
        return read_str(value)
    if isinstance(value, OutOfRange):
        raise Invalid(f"number out of range: {value.text[:40]}")
    raise Invalid(f"expected JSON data, got {describe(value)}")


def _json_object(value: Mapping[Any, Any], depth: int) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    errors: list[Exception] = []
    for key, item in value.items():
        try:
            if not isinstance(key, str):
                raise Invalid(f"object keys must be strings, got {describe(key)}")
            if not key.isascii() and SURROGATE.search(key):
                raise Invalid("object key holds a lone surrogate, which is not valid Unicode")
            out[str.__str__(key)] = _json_value(item, depth + 1)
        except (Invalid, BaseValidationError) as exc:
            errors.append(
                noted(exc, index_note(key if isinstance(key, (str, int)) else repr(key), dict))
            )
    if errors:
        raise IterableValidationError("While structuring a JSON object", errors, dict)
    return out


def _json_array(value: Sequence[Any], depth: int) -> list[JSONValue]:
    out: list[JSONValue] = []
    errors: list[Exception] = []
    for index, item in enumerate(value):
        try:
            out.append(_json_value(item, depth + 1))
        except (Invalid, BaseValidationError) as exc:
            errors.append(noted(exc, index_note(index, list)))
    if errors:
        raise IterableValidationError("While structuring a JSON array", errors, list)
    return out


def read_settings(value: object) -> dict[str, JSONValue]:
    """``PluginConfig.settings``: a JSON object, at the document's second level."""
    if not isinstance(value, Mapping):
        raise Invalid(f"expected an object, got {describe(value)}")
    # A PluginConfig document is one object deep; its settings object is the second level.
    return _json_object(value, 2)


def variant_hook(
    owner: Any,
    units: Mapping[str, Any],
    payloads: Mapping[str, Hook],
) -> Hook:
    """Read an externally tagged enum: ``"Unit"``, ``{"Unit": null}`` or ``{"Variant": value}``."""
    names = ", ".join(quote(name) for name in (*units, *payloads))
    example = next(iter(payloads), "")
    if units and payloads:
        unit_names = ", ".join(map(quote, units))
        shape = f"one of {unit_names} or an object like {{{json.dumps(example)}: ...}}"
    elif units:
        shape = f"one of {names}"
    else:
        shape = f"an object with one key, one of {names}"

    def hook(value: object) -> Any:
        if isinstance(value, str):
            unit = units.get(value)
            if unit is not None:
                return unit
            if value in payloads:
                raise Invalid(
                    f"variant {quote(value)} carries a value: write {{{json.dumps(value)}: ...}}"
                )
            raise Invalid(f"unknown variant {quote(value)}, expected one of {names}")
        if not isinstance(value, Mapping):
            raise Invalid(f"expected {shape}, got {describe(value)}")
        duplicates = getattr(value, "duplicates", ())
        if len(value) != 1 or duplicates:
            count = len(value) + len(duplicates)
            raise Invalid(f"expected {shape}, got an object with {count} keys")
        ((key, payload),) = value.items()
        if key in units:
            if payload is None:
                return units[key]
            error: Exception = Invalid(
                f"variant {quote(key)} carries no value, expected null, got {describe(payload)}"
            )
        elif key in payloads:
            try:
                return payloads[key](payload)
            except (Invalid, BaseValidationError) as exc:
                error = exc
        else:
            raise Invalid(f"unknown variant {quote(str(key))}, expected one of {names}")
        raise ClassValidationError(
            f"While structuring variant {key}", [noted(error, field_note(key, owner))], owner
        )

    return hook


@attrs.frozen
class Field:
    """One field of a serde struct: its name, how it is read and written (``write`` is
    ``None`` for a value that is JSON data as it is), whether it may be missing from an
    object (an ``Option``)."""

    name: str
    read: Hook
    write: Hook | None
    required: bool = True


def struct_hook(owner: type, fields: Sequence[Field]) -> Hook:
    """Read a serde struct: an object (unknown keys ignored) or an array of every field in order."""
    names = tuple(field.name for field in fields)
    by_name = {field.name: field for field in fields}
    title = owner.__qualname__

    def build(kwargs: dict[str, Any]) -> Any:
        try:
            return owner(**kwargs)
        except (TypeError, ValueError) as exc:
            raise Invalid(str(exc)) from None

    def hook(value: object) -> Any:
        kwargs: dict[str, Any] = {}
        errors: list[Exception] = []
        if isinstance(value, Mapping):
            # serde reads every key of a struct as a field name, unknown ones included.
            errors.extend(
                noted(Invalid("field name holds a lone surrogate"), index_note(key, owner))
                for key in value
                if isinstance(key, str) and not key.isascii() and SURROGATE.search(key)
            )
            errors.extend(
                noted(Invalid("duplicate field"), field_note(name, owner))
                for name in getattr(value, "duplicates", ())
                if name in by_name
            )
            for field in fields:
                if field.name in value:
                    try:
                        kwargs[field.name] = field.read(value[field.name])
                    except (Invalid, BaseValidationError) as exc:
                        errors.append(noted(exc, field_note(field.name, owner)))
                elif field.required:
                    errors.append(noted(Invalid("missing field"), field_note(field.name, owner)))
            if errors:
                raise ClassValidationError(f"While structuring {title}", errors, owner)
            return build(kwargs)
        if isinstance(value, (list, tuple)):
            if len(value) != len(fields):
                raise Invalid(
                    f"expected {title} as an array of {len(fields)} elements "
                    f"({', '.join(names)}), got {len(value)}"
                )
            for index, (field, item) in enumerate(zip(fields, value, strict=True)):
                try:
                    kwargs[field.name] = field.read(item)
                except (Invalid, BaseValidationError) as exc:
                    errors.append(noted(exc, index_note(index, owner)))
            if errors:
                raise IterableValidationError(f"While structuring {title}", errors, owner)
            return build(kwargs)
        raise Invalid(f"expected an object for {title}, got {describe(value)}")

    return hook
