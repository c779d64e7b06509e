"""Writing the wire format: plain JSON data in serde's shapes, and serde_json's exact bytes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring as _encode_string
from typing import Any, Final, NoReturn

from mofa_kernel._errors import SerializationError
from mofa_kernel._metadata import JSONValue
from mofa_kernel._reload_config import ReloadStrategy
from mofa_kernel._types import PluginPriority, PluginState, PluginType

from ._errors import Invalid, describe, join
from ._limits import I64_MIN, MAX_DEPTH, SURROGATE, U32_MAX, U64_MAX, float_text
from ._read import Field, Hook, big_int

__all__ = [
    "WRITERS",
    "WriteError",
    "encode",
    "struct_writer",
    "surrogate_lines",
    "write_fields",
    "write_float",
    "write_plugin_type",
    "write_priority",
    "write_settings",
    "write_state",
    "write_strategy",
    "write_u32",
    "write_value",
]

_EXPONENT_HINT: Final = re.compile(r"\de[-+]\d")

#: The writer of each of the kernel's types, by class; :mod:`mofa_kernel._wire._converter`
#: fills it, and only its functions write values.
WRITERS: dict[type, Hook] = {}


class WriteError(Exception):
    """A value that cannot be written; ``keys`` collects its path from the inside out."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unsupported = unsupported
        self.keys: list[int | str] = []

    def raise_for(self, root: str) -> NoReturn:
        path = root
        for key in reversed(self.keys):
            path = join(path, key)
        if self.unsupported:
            raise TypeError(f"{path}: {self.message}") from None
        raise SerializationError([f"{path}: {self.message}"]) from None


def _encode_into(data: JSONValue, parts: list[str]) -> None:
    """Append the compact JSON text of ``data`` (output of :func:`to_data`) to ``parts``."""
    if isinstance(data, str):
        parts.append(_encode_string(data))
    elif data is None or isinstance(data, (bool, int)):
        parts.append(_ENCODER.encode(data))
    elif isinstance(data, float):
        parts.append(float_text(data))
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


def encode(data: JSONValue) -> str:
    """The compact JSON text of ``data`` (plain JSON data), floats spelled as Rust spells them."""
    text = _ENCODER.encode(data)
    if _EXPONENT_HINT.search(text):
        # Python spelled some float with an exponent ("1e+16"): write it all the Rust way.
        parts: list[str] = []
        _encode_into(data, parts)
        text = "".join(parts)
    return text


def write_value(value: object, depth: int, sort: bool) -> JSONValue:
    """Plain JSON data for ``value``; ``depth`` is the nesting a container here would have."""
    if value is None or value is True or value is False or type(value) is str:
        return value
    if type(value) is int:
        if I64_MIN <= value <= U64_MAX:
            return value
        try:
            return big_int(value)
        except Invalid as exc:
            raise WriteError(str(exc)) from None
    if type(value) is float:
        return value if math.isfinite(value) else None
    writer = WRITERS.get(type(value))
    if writer is not None:
        return writer(value)  # type: ignore[no-any-return]  # writers return JSON data
    if isinstance(value, Mapping):
        return _write_object(value, depth, sort)
    if isinstance(value, (list, tuple)):
        if depth > MAX_DEPTH:
            raise WriteError(_TOO_DEEP)
        out: list[JSONValue] = []
        for index, item in enumerate(value):
            try:
                out.append(write_value(item, depth + 1, sort))
            except WriteError as exc:
                exc.keys.append(index)
                raise
        return out
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)):
        return write_value(int(value) if isinstance(value, int) else float(value), depth, sort)
    if isinstance(value, str):
        return str.__str__(value)
    for base in type(value).__mro__[1:]:
        writer = WRITERS.get(base)
        if writer is not None:
            return writer(value)  # type: ignore[no-any-return]  # writers return JSON data
    raise WriteError(
        f"cannot serialise a value of type {type(value).__qualname__!r} as JSON", unsupported=True
    )


_TOO_DEEP: Final = (
    f"nested deeper than {MAX_DEPTH} arrays and objects, which serde_json cannot read back"
)


def _write_object(value: Mapping[Any, Any], depth: int, sort: bool) -> dict[str, JSONValue]:
    if depth > MAX_DEPTH:
        raise WriteError(_TOO_DEEP)
    items: Iterable[tuple[Any, Any]] = value.items()
    for key, _ in value.items():
        if not isinstance(key, str):
            raise WriteError(f"object keys must be strings, got {describe(key)}", unsupported=True)
    if sort:
        # serde_json::Map is a BTreeMap: keys in code-point (= UTF-8 byte) order.
        items = sorted(items, key=lambda item: item[0])
    out: dict[str, JSONValue] = {}
    for key, item in items:
        try:
            out[str.__str__(key)] = write_value(item, depth + 1, sort)
        except WriteError as exc:
            exc.keys.append(key)
            raise
    return out


def write_float(number: float) -> float | None:
    """A float as serde_json writes it: NaN and infinities as ``null``."""
    return number if math.isfinite(number) else None


def write_u32(number: int) -> int:
    """A Rust ``u32``; anything else cannot be read back."""
    if not 0 <= number <= U32_MAX:
        raise WriteError(f"{number} does not fit the Rust u32 field (0..={U32_MAX})")
    return number


def write_fields(value: object, fields: Sequence[Field]) -> dict[str, JSONValue]:
    """A struct as a JSON object: each field's writer applied, in the order of ``fields``."""
    out: dict[str, JSONValue] = {}
    for field in fields:
        try:
            item = getattr(value, field.name)
            out[field.name] = item if field.write is None else field.write(item)
        except WriteError as exc:
            exc.keys.append(field.name)
            raise
    return out


def struct_writer(fields: Sequence[Field]) -> Hook:
    """The writer of a struct with ``fields``: what :func:`write_fields` gives, faster.

    Compiled, as attrs compiles its methods, to one dict display over the
    fields' attributes (a third of the time of a loop): ``plugins list``
    writes the metadata of every plugin. The names are the attrs class's
    field names, so identifiers.
    """
    namespace: dict[str, Any] = {}
    items = []
    for index, field in enumerate(fields):
        if not field.name.isidentifier():
            raise ValueError(f"field name {field.name!r} is not an identifier")
        if field.write is None:
            items.append(f"{field.name!r}: value.{field.name}")
        else:
            namespace[f"write_{index}"] = field.write
            items.append(f"{field.name!r}: write_{index}(value.{field.name})")
    code = f"def write_all(value):\n    return {{{', '.join(items)}}}\n"
    exec(code, namespace)  # noqa: S102 - the code is built above from identifiers only
    write_all: Hook = namespace["write_all"]

    def write(value: object) -> dict[str, JSONValue]:
        try:
            return write_all(value)  # type: ignore[no-any-return]  # a dict of JSON data
        except WriteError:
            return write_fields(value, fields)  # again, field by field, to name the bad one

    return write


def write_plugin_type(value: PluginType) -> JSONValue:
    """``"Tool"``, or ``{"Custom": name}``."""
    return value.variant if value.custom_name is None else {"Custom": value.custom_name}


def write_state(value: PluginState) -> JSONValue:
    """``"Running"``, or ``{"Error": message}``."""
    return value.variant if value.message is None else {"Error": value.message}


_PRIORITY_NAMES: Final = {priority: priority.variant for priority in PluginPriority}


def write_priority(value: PluginPriority) -> JSONValue:
    """The priority's variant name."""
    return _PRIORITY_NAMES[value]


def write_settings(settings: object) -> JSONValue:
    """``PluginConfig.settings``: top-level keys in their order, nested objects sorted."""
    if not isinstance(settings, Mapping):
        raise WriteError(f"expected an object, got {describe(settings)}", unsupported=True)
    out: dict[str, JSONValue] = {}
    for key, item in settings.items():
        if not isinstance(key, str):
            raise WriteError(f"object keys must be strings, got {describe(key)}", unsupported=True)
        try:
            # Top-level keys keep their order (Rust's is a HashMap's); nested objects are sorted.
            out[key] = write_value(item, 3, True)
        except WriteError as exc:
            exc.keys.append(key)
            raise
    return out


def write_strategy(value: ReloadStrategy) -> JSONValue:
    """``"Immediate"``, or ``{"Debounced": seconds}``."""
    if value.delay is None:
        return value.variant
    return {value.variant: write_float(value.delay)}


def surrogate_lines(data: object, path: str, lines: list[str]) -> None:
    """Add to ``lines`` the path of each string or key in ``data`` with a lone surrogate."""
    if isinstance(data, str):
        if SURROGATE.search(data):
            lines.append(f"{path}: string holds a lone surrogate, which is not valid Unicode")
    elif isinstance(data, dict):
        for key, item in data.items():
            if SURROGATE.search(key):
                lines.append(
                    f"{path}: object key holds a lone surrogate, which is not valid Unicode"
                )
            else:
                surrogate_lines(item, join(path, key), lines)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            surrogate_lines(item, join(path, index), lines)
