"""The JSON wire format: the bytes Rust's serde_json writes and accepts for the kernel's types.

:func:`to_json` and :func:`from_json` work on text; :func:`to_data` and
:func:`from_data` on plain data (dicts, lists, strings, numbers, booleans and
``None``), which is what the command line prints and TOML configuration feeds
in. Every hook lives on one cattrs :data:`converter`, so other modules can
reuse or extend it; :func:`error_lines` turns any cattrs validation error into
one line per bad field with its path.

Reading follows serde's derive rules, not Python's leniency: enums by variant
name (``"Tool"``, ``{"Custom": "x"}``), structs as objects or as arrays in
field order, unknown fields ignored, duplicate or missing fields refused,
``null`` only where the Rust type is an ``Option``, booleans never numbers.
Writing gives serde_json's exact bytes, floats spelled as Rust's ``ryu`` does.
The types the seed does not serialise (events, reload settings) use the same
externally tagged style, with seconds as floats for durations.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring as _encode_string
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar, cast, overload

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from ._errors import SerializationError, quoted
from ._events import (
    PLUGIN_EVENT_VARIANTS,
    RELOAD_EVENT_VARIANTS,
    KernelEvent,
    PluginEvent,
    ReloadEvent,
)
from ._metadata import JSONValue, PluginConfig, PluginMetadata
from ._reload_config import HotReloadConfig, ReloadStrategy
from ._types import PluginPriority, PluginState, PluginType

__all__ = [
    "converter",
    "error_lines",
    "from_data",
    "from_json",
    "to_data",
    "to_json",
]

_T = TypeVar("_T")
_Hook = Callable[[Any], Any]

#: serde_json refuses input nested deeper than this many arrays and objects in total.
MAX_DEPTH: Final = 127
_I64_MIN: Final = -(2**63)
_U64_MAX: Final = 2**64 - 1
_U32_MAX: Final = 2**32 - 1

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_EXPONENT_HINT: Final = re.compile(r"\de[-+]\d")
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+\Z")


# --------------------------------------------------------------------------
# Errors


class _Invalid(ValueError):
    """One bad value; the message says what was expected and what came."""


@attrs.frozen
class _OutOfRange:
    """A JSON number beyond the f64 range, as written.

    serde_json refuses it only where it reads the value: inside an unknown
    field, which it skips, it is accepted. So parsing keeps it and the hooks
    that read a value refuse it.
    """

    text: str


def _noted(exc: Exception, note: str) -> Exception:
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        # 3.10 has no add_note; cattrs and the exceptiongroup backport read this attribute.
        setattr(exc, "__notes__", [*getattr(exc, "__notes__", ()), note])  # noqa: B010
    return exc


def _field_note(name: str, owner: Any) -> AttributeValidationNote:
    return AttributeValidationNote(f"Structuring field {name}", name, owner)


def _index_note(index: int | str, owner: Any) -> IterableValidationNote:
    return IterableValidationNote(f"Structuring element {index!r}", index, owner)


def _join(path: str, key: int | str, *, field: bool = False) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if field or _BARE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{quoted(key, ascii_only=bool(_SURROGATE.search(key)))}]"


def error_lines(exc: BaseException, root: str = "$") -> list[str]:
    """Flatten a structuring error into one ``"<path>: <problem>"`` line per bad value.

    Understands the notes cattrs attaches (fields as ``.name``, list indices as
    ``[i]``, mapping keys as ``.key`` or ``["odd key"]``), so it serves the
    errors of converters derived from :data:`converter` too. ``root`` starts
    every path: ``"$"`` for JSON documents, ``""`` for TOML tables.
    """
    lines: list[str] = []
    _flatten(exc, root, lines)
    return lines


def _flatten(exc: BaseException, path: str, lines: list[str]) -> None:
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = _join(path, note.name, field=True)
                    break
                if isinstance(note, IterableValidationNote):
                    sub_path = _join(path, note.index)
                    break
            _flatten(sub, sub_path, lines)
    elif isinstance(exc, ForbiddenExtraKeysError):
        lines.extend(f"{_join(path, key)}: unknown field" for key in sorted(exc.extra_fields))
    else:
        lines.append(f"{path}: {_message(exc)}" if path else _message(exc))


def _message(exc: BaseException) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        # How cattrs' generated hooks report a missing required field.
        return "missing field"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _describe(value: object) -> str:
    if isinstance(value, _OutOfRange):
        return f"number out of range ({value.text[:40]})"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {int(value)}"
    if isinstance(value, float):
        return f"number {_float_text(value) if math.isfinite(value) else value}"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__qualname__}"


# --------------------------------------------------------------------------
# Reading: scalars


def _str(value: object) -> str:
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            raise _Invalid("string holds a lone surrogate, which is not valid Unicode")
        return str.__str__(value)
    raise _Invalid(f"expected a string, got {_describe(value)}")


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"expected a boolean, got {_describe(value)}")


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise _Invalid(f"expected an integer, got {_describe(value)}")


def _u32(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U32_MAX:
        return int(value)
    raise _Invalid(f"expected an integer in 0..={_U32_MAX}, got {_describe(value)}")


def _float(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    raise _Invalid(f"expected a number, got {_describe(value)}")


def _seconds(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return number
    raise _Invalid(f"expected a non-negative number of seconds, got {_describe(value)}")


def _path(value: object) -> Path:
    if isinstance(value, str):
        return Path(_str(value))
    raise _Invalid(f"expected a path as a string, got {_describe(value)}")


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected an array of strings, got {_describe(value)}")
    out: list[str] = []
    errors: list[Exception] = []
    for index, item in enumerate(value):
        try:
            out.append(_str(item))
        except _Invalid as exc:
            errors.append(_noted(exc, _index_note(index, str)))
    if errors:
        raise IterableValidationError("While structuring an array of strings", errors, tuple)
    return tuple(out)


def _bytes(value: object) -> bytes:
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"expected an array of bytes (integers 0..=255), got {_describe(value)}")
    errors: list[Exception] = [
        _noted(
            _Invalid(f"expected an integer in 0..=255, got {_describe(item)}"), _index_note(i, int)
        )
        for i, item in enumerate(value)
        if not (isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255)
    ]
    if errors:
        raise IterableValidationError("While structuring an array of bytes", errors, bytes)
    return bytes(value)


# --------------------------------------------------------------------------
# Reading: JSON values (PluginConfig.settings)


def _big_int(value: int) -> float:
    # serde_json has no integer beyond i64/u64; it reads such a number as an f64.
    try:
        return float(value)
    except OverflowError:
        raise _Invalid("integer is beyond the range of a JSON number (f64)") from None


def _json_value(value: object, depth: int) -> JSONValue:
    """Check ``value`` as JSON data, as ``serde_json::Value`` holds it; ``depth`` is its nesting."""
    if value is None or value is True or value is False:
        return value
    if type(value) is str:
        return _str(value)
    if type(value) is int:
        return value if _I64_MIN <= value <= _U64_MAX else _big_int(value)
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple)):
        if depth > MAX_DEPTH:
            raise _Invalid(
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
        return _str(value)
    if isinstance(value, _OutOfRange):
        raise _Invalid(f"number out of range: {value.text[:40]}")
    raise _Invalid(f"expected JSON data, got {_describe(value)}")


def _json_object(value: Mapping[Any, Any], depth: int) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    errors: list[Exception] = []
    for key, item in value.items():
        try:
            if not isinstance(key, str):
                raise _Invalid(f"object keys must be strings, got {_describe(key)}")
            if not key.isascii() and _SURROGATE.search(key):
                raise _Invalid("object key holds a lone surrogate, which is not valid Unicode")
            out[str.__str__(key)] = _json_value(item, depth + 1)
        except (_Invalid, BaseValidationError) as exc:
            errors.append(
                _noted(exc, _index_note(key if isinstance(key, (str, int)) else repr(key), dict))
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
        except (_Invalid, BaseValidationError) as exc:
            errors.append(_noted(exc, _index_note(index, list)))
    if errors:
        raise IterableValidationError("While structuring a JSON array", errors, list)
    return out


def _settings(value: object) -> dict[str, JSONValue]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_describe(value)}")
    # A PluginConfig document is one object deep; its settings object is the second level.
    return _json_object(value, 2)


# --------------------------------------------------------------------------
# Reading: enums and structs


def _variant_hook(
    owner: Any,
    units: Mapping[str, Any],
    payloads: Mapping[str, _Hook],
) -> _Hook:
    """Read an externally tagged enum: ``"Unit"``, ``{"Unit": null}`` or ``{"Variant": value}``."""
    names = ", ".join(_quote(name) for name in (*units, *payloads))
    example = next(iter(payloads), "")
    if units and payloads:
        unit_names = ", ".join(map(_quote, units))
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
                raise _Invalid(
                    f"variant {_quote(value)} carries a value: write {{{json.dumps(value)}: ...}}"
                )
            raise _Invalid(f"unknown variant {_quote(value)}, expected one of {names}")
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected {shape}, got {_describe(value)}")
        duplicates = getattr(value, "duplicates", ())
        if len(value) != 1 or duplicates:
            count = len(value) + len(duplicates)
            raise _Invalid(f"expected {shape}, got an object with {count} keys")
        ((key, payload),) = value.items()
        if key in units:
            if payload is None:
                return units[key]
            error: Exception = _Invalid(
                f"variant {_quote(key)} carries no value, expected null, got {_describe(payload)}"
            )
        elif key in payloads:
            try:
                return payloads[key](payload)
            except (_Invalid, BaseValidationError) as exc:
                error = exc
        else:
            raise _Invalid(f"unknown variant {_quote(str(key))}, expected one of {names}")
        raise ClassValidationError(
            f"While structuring variant {key}", [_noted(error, _field_note(key, owner))], owner
        )

    return hook


@attrs.frozen
class _Field:
    name: str
    read: _Hook
    write: _Hook
    required: bool = True


def _struct_hook(owner: type, fields: Sequence[_Field]) -> _Hook:
    """Read a serde struct: an object (unknown keys ignored) or an array of every field in order."""
    names = tuple(field.name for field in fields)
    by_name = {field.name: field for field in fields}
    title = owner.__qualname__

    def build(kwargs: dict[str, Any]) -> Any:
        try:
            return owner(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None

    def hook(value: object) -> Any:
        kwargs: dict[str, Any] = {}
        errors: list[Exception] = []
        if isinstance(value, Mapping):
            # serde reads every key of a struct as a field name, unknown ones included.
            errors.extend(
                _noted(_Invalid("field name holds a lone surrogate"), _index_note(key, owner))
                for key in value
                if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key)
            )
            errors.extend(
                _noted(_Invalid("duplicate field"), _field_note(name, owner))
                for name in getattr(value, "duplicates", ())
                if name in by_name
            )
            for field in fields:
                if field.name in value:
                    try:
                        kwargs[field.name] = field.read(value[field.name])
                    except (_Invalid, BaseValidationError) as exc:
                        errors.append(_noted(exc, _field_note(field.name, owner)))
                elif field.required:
                    errors.append(_noted(_Invalid("missing field"), _field_note(field.name, owner)))
            if errors:
                raise ClassValidationError(f"While structuring {title}", errors, owner)
            return build(kwargs)
        if isinstance(value, (list, tuple)):
            if len(value) != len(fields):
                raise _Invalid(
                    f"expected {title} as an array of {len(fields)} elements "
                    f"({', '.join(names)}), got {len(value)}"
                )
            for index, (field, item) in enumerate(zip(fields, value, strict=True)):
                try:
                    kwargs[field.name] = field.read(item)
                except (_Invalid, BaseValidationError) as exc:
                    errors.append(_noted(exc, _index_note(index, owner)))
            if errors:
                raise IterableValidationError(f"While structuring {title}", errors, owner)
            return build(kwargs)
        raise _Invalid(f"expected an object for {title}, got {_describe(value)}")

    return hook


# --------------------------------------------------------------------------
# Writing


class _WriteError(Exception):
    """A value that cannot be written; ``keys`` collects its path from the inside out."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unsupported = unsupported
        self.keys: list[int | str] = []

    def raise_for(self, root: str) -> NoReturn:
        path = root
        for key in reversed(self.keys):
            path = _join(path, key)
        if self.unsupported:
            raise TypeError(f"{path}: {self.message}") from None
        raise SerializationError([f"{path}: {self.message}"]) from None


def _float_text(number: float) -> str:
    """``number`` as Rust's ryu spells it: shortest digits, ``1e16`` and ``0.00001`` forms."""
    text = repr(number)
    if "e" not in text:
        return text
    mantissa, _, exponent = text.partition("e")
    power = int(exponent)
    if power == -5:
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{power}"


def _encode_into(data: JSONValue, parts: list[str]) -> None:
    """Append the compact JSON text of ``data`` (output of :func:`to_data`) to ``parts``."""
    if isinstance(data, str):
        parts.append(_encode_string(data))
    elif data is None or isinstance(data, (bool, int)):
        parts.append(_ENCODER.encode(data))
    elif isinstance(data, float):
        parts.append(_float_text(data))
    elif isinstance(data, dict):
        parts.append("{")
        for index, (key, item) in enumerate(data.items()):
            parts.append(f"{',' if index else ''}{_encode_string(key)}:")
            _encode_into(item, parts)
        parts.append("}")
    else:
        parts.append("[")
        for index, item in enumerate(data):
            if index:
                parts.append(",")
            _encode_into(item, parts)
        parts.append("]")


_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False
)


def _encode(data: JSONValue) -> str:
    text = _ENCODER.encode(data)
    if _EXPONENT_HINT.search(text):
        # Python spelled some float with an exponent ("1e+16"): write it all the Rust way.
        parts: list[str] = []
        _encode_into(data, parts)
        text = "".join(parts)
    return text


def _write(value: object, depth: int, sort: bool) -> JSONValue:
    """Plain JSON data for ``value``; ``depth`` is the nesting a container here would have."""
    if value is None or value is True or value is False or type(value) is str:
        return value
    if type(value) is int:
        if _I64_MIN <= value <= _U64_MAX:
            return value
        try:
            return _big_int(value)
        except _Invalid as exc:
            raise _WriteError(str(exc)) from None
    if type(value) is float:
        return value if math.isfinite(value) else None
    writer = _WRITERS.get(type(value))
    if writer is not None:
        return writer(value)  # type: ignore[no-any-return]  # writers return JSON data
    if isinstance(value, Mapping):
        return _write_object(value, depth, sort)
    if isinstance(value, (list, tuple)):
        if depth > MAX_DEPTH:
            raise _WriteError(_TOO_DEEP)
        out: list[JSONValue] = []
        for index, item in enumerate(value):
            try:
                out.append(_write(item, depth + 1, sort))
            except _WriteError as exc:
                exc.keys.append(index)
                raise
        return out
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)):
        return _write(int(value) if isinstance(value, int) else float(value), depth, sort)
    if isinstance(value, str):
        return str.__str__(value)
    for base in type(value).__mro__[1:]:
        writer = _WRITERS.get(base)
        if writer is not None:
            return writer(value)  # type: ignore[no-any-return]  # writers return JSON data
    raise _WriteError(
        f"cannot serialise a value of type {type(value).__qualname__!r} as JSON", unsupported=True
    )


_TOO_DEEP: Final = (
    f"nested deeper than {MAX_DEPTH} arrays and objects, which serde_json cannot read back"
)


def _write_object(value: Mapping[Any, Any], depth: int, sort: bool) -> dict[str, JSONValue]:
    if depth > MAX_DEPTH:
        raise _WriteError(_TOO_DEEP)
    items: Iterable[tuple[Any, Any]] = value.items()
    for key, _ in value.items():
        if not isinstance(key, str):
            raise _WriteError(
                f"object keys must be strings, got {_describe(key)}", unsupported=True
            )
    if sort:
        # serde_json::Map is a BTreeMap: keys in code-point (= UTF-8 byte) order.
        items = sorted(items, key=lambda item: item[0])
    out: dict[str, JSONValue] = {}
    for key, item in items:
        try:
            out[str.__str__(key)] = _write(item, depth + 1, sort)
        except _WriteError as exc:
            exc.keys.append(key)
            raise
    return out


def _write_float(number: float) -> float | None:
    return number if math.isfinite(number) else None


def _write_u32(number: int) -> int:
    if not 0 <= number <= _U32_MAX:
        raise _WriteError(f"{number} does not fit the Rust u32 field (0..={_U32_MAX})")
    return number


def _write_fields(value: object, fields: Sequence[_Field]) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for field in fields:
        try:
            out[field.name] = field.write(getattr(value, field.name))
        except _WriteError as exc:
            exc.keys.append(field.name)
            raise
    return out


def _write_plugin_type(value: PluginType) -> JSONValue:
    return value.variant if value.custom_name is None else {"Custom": value.custom_name}


def _write_state(value: PluginState) -> JSONValue:
    return value.variant if value.message is None else {"Error": value.message}


_PRIORITY_NAMES: Final = {priority: priority.variant for priority in PluginPriority}


def _write_priority(value: PluginPriority) -> JSONValue:
    return _PRIORITY_NAMES[value]


def _write_metadata(value: PluginMetadata) -> JSONValue:
    return {
        "id": value.id,
        "name": value.name,
        "version": value.version,
        "description": value.description,
        "plugin_type": _write_plugin_type(value.plugin_type),
        "priority": _PRIORITY_NAMES[value.priority],
        "dependencies": list(value.dependencies),
        "capabilities": list(value.capabilities),
        "author": value.author,
    }


def _write_settings(settings: object) -> JSONValue:
    if not isinstance(settings, Mapping):
        raise _WriteError(f"expected an object, got {_describe(settings)}", unsupported=True)
    out: dict[str, JSONValue] = {}
    for key, item in settings.items():
        if not isinstance(key, str):
            raise _WriteError(
                f"object keys must be strings, got {_describe(key)}", unsupported=True
            )
        try:
            # Top-level keys keep their order (Rust's is a HashMap's); nested objects are sorted.
            out[key] = _write(item, 3, True)
        except _WriteError as exc:
            exc.keys.append(key)
            raise
    return out


def _write_strategy(value: ReloadStrategy) -> JSONValue:
    if value.delay is None:
        return value.variant
    return {value.variant: _write_float(value.delay)}


def _surrogate_lines(data: object, path: str, lines: list[str]) -> None:
    if isinstance(data, str):
        if _SURROGATE.search(data):
            lines.append(f"{path}: string holds a lone surrogate, which is not valid Unicode")
    elif isinstance(data, dict):
        for key, item in data.items():
            if _SURROGATE.search(key):
                lines.append(
                    f"{path}: object key holds a lone surrogate, which is not valid Unicode"
                )
            else:
                _surrogate_lines(item, _join(path, key), lines)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _surrogate_lines(item, _join(path, index), lines)


# --------------------------------------------------------------------------
# The model's fields, in the seed's declaration order (the wire order).


def _identity(value: Any) -> Any:
    return value


_plugin_type = _variant_hook(
    PluginType,
    {kind.variant: kind for kind in PluginType.builtins()},
    {"Custom": lambda value: PluginType.custom(_str(value))},
)
_plugin_state = _variant_hook(
    PluginState,
    {
        state.variant: state
        for state in (
            PluginState.UNLOADED,
            PluginState.LOADING,
            PluginState.LOADED,
            PluginState.RUNNING,
            PluginState.PAUSED,
        )
    },
    {"Error": lambda value: PluginState.error(_str(value))},
)
_plugin_priority = _variant_hook(
    PluginPriority, {priority.variant: priority for priority in PluginPriority}, {}
)
_reload_strategy = _variant_hook(
    ReloadStrategy,
    {
        strategy.variant: strategy
        for strategy in (ReloadStrategy.IMMEDIATE, ReloadStrategy.MANUAL, ReloadStrategy.ON_IDLE)
    },
    {"Debounced": lambda value: ReloadStrategy.debounced(_seconds(value))},
)

_METADATA_FIELDS: Final = (
    _Field("id", _str, _identity),
    _Field("name", _str, _identity),
    _Field("version", _str, _identity),
    _Field("description", _str, _identity),
    _Field("plugin_type", _plugin_type, _write_plugin_type),
    _Field("priority", _plugin_priority, _write_priority),
    _Field("dependencies", _strings, list),
    _Field("capabilities", _strings, list),
    # The only Option in the seed's structs: serde lets it be missing from an object.
    _Field("author", _opt_str, _identity, required=False),
)
_CONFIG_FIELDS: Final = (
    _Field("settings", _settings, _write_settings),
    _Field("enabled", _bool, _identity),
    _Field("auto_start", _bool, _identity),
)
_HOT_RELOAD_FIELDS: Final = (
    _Field("strategy", _reload_strategy, _write_strategy),
    _Field("preserve_state", _bool, _identity),
    _Field("auto_rollback", _bool, _identity),
    _Field("max_reload_attempts", _u32, _write_u32),
    _Field("reload_cooldown", _seconds, _write_float),
)

# Event field types (attrs annotations, as strings) -> how the field reads and writes.
_EVENT_FIELD_KINDS: Final[dict[str, tuple[_Hook, _Hook]]] = {
    "str": (_str, _identity),
    "bool": (_bool, _identity),
    "PluginState": (_plugin_state, _write_state),
    "Path": (_path, os.fspath),
    "float": (_seconds, _write_float),
    "int": (_u32, _write_u32),
    "bytes": (_bytes, list),
}


def _event_fields(variant: type) -> tuple[_Field, ...]:
    fields = []
    for attribute in attrs.fields(variant):
        kind = attribute.type if isinstance(attribute.type, str) else attribute.type.__name__
        read, write = _EVENT_FIELD_KINDS[kind]
        fields.append(_Field(attribute.name, read, write))
    return tuple(fields)


_READERS: dict[Any, _Hook] = {
    PluginType: _plugin_type,
    PluginState: _plugin_state,
    PluginPriority: _plugin_priority,
    PluginMetadata: _struct_hook(PluginMetadata, _METADATA_FIELDS),
    PluginConfig: _struct_hook(PluginConfig, _CONFIG_FIELDS),
    ReloadStrategy: _reload_strategy,
    HotReloadConfig: _struct_hook(HotReloadConfig, _HOT_RELOAD_FIELDS),
}
_WRITERS: dict[type, _Hook] = {
    PluginType: _write_plugin_type,
    PluginState: _write_state,
    PluginPriority: _write_priority,
    PluginMetadata: _write_metadata,
    PluginConfig: lambda value: _write_fields(value, _CONFIG_FIELDS),
    ReloadStrategy: _write_strategy,
    HotReloadConfig: lambda value: _write_fields(value, _HOT_RELOAD_FIELDS),
}


def _add_events(family: type, variants: Mapping[str, type]) -> dict[str, _Hook]:
    payloads: dict[str, _Hook] = {}
    for name, variant in variants.items():
        fields = _event_fields(variant)
        payloads[name] = _struct_hook(variant, fields)
        _READERS[variant] = _variant_hook(variant, {}, {name: payloads[name]})

        def write(value: object, name: str = name, fields: tuple[_Field, ...] = fields) -> Any:
            try:
                return {name: _write_fields(value, fields)}
            except _WriteError as exc:
                exc.keys.append(name)
                raise

        _WRITERS[variant] = write
    _READERS[family] = _variant_hook(family, {}, payloads)
    return payloads


_READERS[KernelEvent] = _variant_hook(
    KernelEvent,
    {},
    {
        **_add_events(PluginEvent, PLUGIN_EVENT_VARIANTS),
        **_add_events(ReloadEvent, RELOAD_EVENT_VARIANTS),
    },
)


# --------------------------------------------------------------------------
# The converter


def _typed(read: _Hook) -> Callable[[Any, Any], Any]:
    """A cattrs structure hook from a one-argument reader; subclasses of the target are rebuilt."""

    def hook(value: Any, target: Any) -> Any:
        result = read(value)
        if isinstance(target, type) and not isinstance(result, target):
            try:
                return target(result)
            except (TypeError, ValueError) as exc:
                raise _Invalid(str(exc)) from None
        return result

    return hook


def _untyped(read: _Hook) -> Callable[[Any, Any], Any]:
    def hook(value: Any, target: Any) -> Any:
        return read(value)

    return hook


def _is(target: object) -> Callable[[Any], bool]:
    def predicate(candidate: Any) -> bool:
        return bool(candidate == target)

    return predicate


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)
    # Strict scalars for every class structured through this converter: a string is
    # never a number, a boolean never an integer, and null only where Optional.
    scalars: tuple[tuple[type, _Hook], ...] = (
        (str, _str),
        (bool, _bool),
        (int, _int),
        (float, _float),
        (Path, _path),
    )
    for scalar, read in scalars:
        conv.register_structure_hook(scalar, _typed(read))
    for target, read in _READERS.items():
        if isinstance(target, type) and not attrs.has(target):
            # By class, so that PluginPriority does not fall through to its base's int hook.
            conv.register_structure_hook(target, _untyped(read))
        else:
            # By predicate: registering an attrs class by class makes cattrs resolve its
            # annotations, which the hooks here never need.
            conv.register_structure_hook_func(_is(target), _untyped(read))
    for cls, write in _WRITERS.items():
        if attrs.has(cls):
            conv.register_unstructure_hook_func(_is(cls), write)
        else:
            conv.register_unstructure_hook(cls, write)
    return conv


#: The cattrs converter that carries every wire-format hook. Derive from it
#: (``converter.copy()``) to add hooks of your own; :func:`error_lines` reads
#: its errors.
converter: Final = _make_converter()


# --------------------------------------------------------------------------
# Parsing JSON text the way serde_json does


class _NotJSON(Exception):
    """A token Python's json reads and JSON (so serde_json) does not have."""


def _parse_int(text: str) -> int | float | _OutOfRange:
    if text == "-0":
        return -0.0
    if len(text) <= 21:  # at most 20 digits and a sign: may fit i64 or u64
        number = int(text)
        if _I64_MIN <= number <= _U64_MAX:
            return number
    # Beyond i64/u64 serde_json reads an integer as an f64.
    return _parse_float(text)


def _parse_float(text: str) -> float | _OutOfRange:
    number = float(text)
    return _OutOfRange(text) if math.isinf(number) else number


def _parse_constant(text: str) -> NoReturn:
    raise _NotJSON(f"{text} is not a JSON number")


class _Object(dict[str, Any]):
    """A JSON object that repeated a key (the last value won); ``duplicates`` names them."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for key, _ in pairs:
        if key in seen:
            repeated[key] = None
        seen.add(key)
    dup = _Object(obj)
    dup.duplicates = tuple(repeated)
    return dup


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)


def _parse(text: str | bytes | bytearray | memoryview) -> Any:
    """JSON text as plain data, refusing what serde_json's lexer refuses.

    What depends on the target type (numbers out of range, lone surrogates in
    strings, duplicate fields, nesting) is left to the hooks, as serde skips
    unknown fields without looking into them.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationError([f"$: invalid UTF-8 at byte {exc.start}"]) from None
    elif not isinstance(text, str):
        raise TypeError(f"from_json reads str or bytes, not {type(text).__qualname__}")
    elif not text.isascii() and (found := _SURROGATE.search(text)):
        # A Rust &str cannot hold one, so serde_json never sees such text.
        raise SerializationError(
            [f"$: lone surrogate at character {found.start()}, which is not valid Unicode"]
        )
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        message = exc.msg.removesuffix(" at")
        raise SerializationError([f"$: invalid JSON at {where}: {message}"]) from None
    except _NotJSON as exc:
        raise SerializationError([f"$: invalid JSON: {exc}"]) from None
    except RecursionError:
        raise SerializationError(
            ["$: arrays and objects nested too deeply for Python's JSON parser"]
        ) from None


# --------------------------------------------------------------------------
# The public API


def to_data(value: object) -> JSONValue:
    """``value`` as plain JSON data in serde's shape: what ``serde_json::to_value`` would give.

    Takes the kernel's types, and dicts, lists and scalars that hold them.
    NaN and infinities become ``None``; integers beyond i64/u64 become floats.
    Raises :class:`TypeError` for anything JSON cannot carry and
    :class:`~mofa_kernel.SerializationError` for values Rust could not read back.
    """
    try:
        return _write(value, 1, False)
    except _WriteError as exc:
        exc.raise_for("$")


def to_json(value: object) -> str:
    """``value`` as the compact JSON text serde_json writes for it, byte for byte."""
    data = to_data(value)
    text = _encode(data)
    if not text.isascii() and _SURROGATE.search(text):
        lines: list[str] = []
        _surrogate_lines(data, "$", lines)
        raise SerializationError(lines)
    return text


def _reader_for(target: object) -> None:
    try:
        supported = target in _READERS
    except TypeError:  # unhashable, so certainly not one of ours
        supported = False
    if not supported:
        raise TypeError(f"cannot read JSON into {target!r}: not a mofa-kernel wire type")


@overload
def from_data(target: type[_T], data: object) -> _T: ...
@overload
def from_data(target: object, data: object) -> Any: ...
def from_data(target: object, data: object) -> Any:
    """Build a ``target`` (a kernel type, an event family or ``KernelEvent``) from plain data.

    Applies serde's rules for the type; bad data raises
    :class:`~mofa_kernel.SerializationError` listing every bad field with its path.
    """
    _reader_for(target)
    try:
        return converter.structure(data, cast("type[Any]", target))
    except (_Invalid, BaseValidationError) as exc:
        raise SerializationError(error_lines(exc)) from None


@overload
def from_json(target: type[_T], text: str | bytes) -> _T: ...
@overload
def from_json(target: object, text: str | bytes) -> Any: ...
def from_json(target: object, text: str | bytes) -> Any:
    """Read JSON ``text`` into a ``target``, accepting exactly what serde_json accepts.

    Bad input raises :class:`~mofa_kernel.SerializationError`, one line per
    problem with its path (``$.priority: unknown variant 'normal', ...``).
    """
    _reader_for(target)
    return from_data(target, _parse(text))
