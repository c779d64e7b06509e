"""The wire format's converter: every kernel type's reader and writer, and the public calls.

The fields of each struct are read off its attrs class (annotation -> reader
and writer, see ``_KINDS``); only an order that differs from Rust's is
written down. Every hook is registered on one cattrs :data:`converter`, so
other modules can reuse or extend it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar, cast, overload

import attrs
import cattrs
from cattrs.errors import BaseValidationError

from mofa_kernel._errors import SerializationError
from mofa_kernel._events import (
    PLUGIN_EVENT_VARIANTS,
    RELOAD_EVENT_VARIANTS,
    KernelEvent,
    PluginEvent,
    ReloadEvent,
)
from mofa_kernel._metadata import JSONValue, PluginConfig, PluginMetadata
from mofa_kernel._reload_config import HotReloadConfig, ReloadStrategy
from mofa_kernel._types import PLAIN_STATES, PluginPriority, PluginState, PluginType

from ._errors import Invalid, error_lines
from ._json import parse
from ._limits import SURROGATE
from ._read import (
    Field,
    Hook,
    read_bool,
    read_bytes,
    read_float,
    read_int,
    read_opt_str,
    read_path,
    read_seconds,
    read_settings,
    read_str,
    read_strings,
    read_u32,
    struct_hook,
    variant_hook,
)
from ._write import (
    WRITERS,
    WriteError,
    encode,
    struct_writer,
    surrogate_lines,
    write_float,
    write_plugin_type,
    write_priority,
    write_settings,
    write_state,
    write_strategy,
    write_u32,
    write_value,
)

__all__ = ["converter", "from_data", "from_json", "to_data", "to_json"]

_T = TypeVar("_T")


_plugin_type = variant_hook(
    PluginType,
    {kind.variant: kind for kind in PluginType.builtins()},
    {"Custom": lambda value: PluginType.custom(read_str(value))},
)
_plugin_state = variant_hook(
    PluginState,
    {state.variant: state for state in PLAIN_STATES},
    {"Error": lambda value: PluginState.error(read_str(value))},
)
_plugin_priority = variant_hook(
    PluginPriority, {priority.variant: priority for priority in PluginPriority}, {}
)
_reload_strategy = variant_hook(
    ReloadStrategy,
    {
        strategy.variant: strategy
        for strategy in (ReloadStrategy.IMMEDIATE, ReloadStrategy.MANUAL, ReloadStrategy.ON_IDLE)
    },
    {"Debounced": lambda value: ReloadStrategy.debounced(read_seconds(value))},
)

# Each field's type, as the attrs class annotates it -> how the field reads and writes.
_KINDS: Final[dict[str, tuple[Hook, Hook | None]]] = {
    "str": (read_str, None),
    # An Option: serde lets it be missing from an object.
    "str | None": (read_opt_str, None),
    "bool": (read_bool, None),
    # The seed's only integers are u32 and its only floats Durations, in seconds.
    "int": (read_u32, write_u32),
    "float": (read_seconds, write_float),
    "Path": (read_path, os.fspath),
    "bytes": (read_bytes, list),
    "tuple[str, ...]": (read_strings, list),
    "dict[str, JSONValue]": (read_settings, write_settings),
    "PluginType": (_plugin_type, write_plugin_type),
    "PluginState": (_plugin_state, write_state),
    "PluginPriority": (_plugin_priority, write_priority),
    "ReloadStrategy": (_reload_strategy, write_strategy),
}
#: The Rust struct's field order (the wire order) where the Python class declares another.
_WIRE_ORDER: Final[dict[type, tuple[str, ...]]] = {
    PluginMetadata: (
        "id",
        "name",
        "version",
        "description",
        "plugin_type",
        "priority",
        "dependencies",
        "capabilities",
        "author",
    ),
}


def _fields(cls: type) -> tuple[Field, ...]:
    """The wire fields of the attrs class ``cls``, read off its attributes' annotations."""
    attributes = {attribute.name: attribute for attribute in attrs.fields(cls)}
    order = _WIRE_ORDER.get(cls, tuple(attributes))
    if sorted(order) != sorted(attributes):
        raise TypeError(f"the wire order of {cls.__qualname__} does not name its fields")
    fields = []
    for name in order:
        annotation = attributes[name].type
        kind = annotation if isinstance(annotation, str) else annotation.__name__
        read, write = _KINDS[kind]
        fields.append(Field(name, read, write, required=not kind.endswith(" | None")))
    return tuple(fields)


_READERS: dict[Any, Hook] = {
    PluginType: _plugin_type,
    PluginState: _plugin_state,
    PluginPriority: _plugin_priority,
    ReloadStrategy: _reload_strategy,
}
WRITERS.update(
    {
        PluginType: write_plugin_type,
        PluginState: write_state,
        PluginPriority: write_priority,
        ReloadStrategy: write_strategy,
    }
)
for _struct in (PluginMetadata, PluginConfig, HotReloadConfig):
    _READERS[_struct] = struct_hook(_struct, _fields(_struct))
    WRITERS[_struct] = struct_writer(_fields(_struct))


def _variant_writer(name: str, fields: tuple[Field, ...]) -> Hook:
    """The writer of an enum variant carrying a struct: ``{"Name": {...fields}}``."""
    write_struct = struct_writer(fields)

    def write(value: object) -> JSONValue:
        try:
            return {name: write_struct(value)}
        except WriteError as exc:
            exc.keys.append(name)
            raise

    return write


def _add_events(family: type, variants: Mapping[str, type]) -> dict[str, Hook]:
    payloads: dict[str, Hook] = {}
    for name, variant in variants.items():
        fields = _fields(variant)
        payloads[name] = struct_hook(variant, fields)
        _READERS[variant] = variant_hook(variant, {}, {name: payloads[name]})

        WRITERS[variant] = _variant_writer(name, fields)
    _READERS[family] = variant_hook(family, {}, payloads)
    return payloads


_READERS[KernelEvent] = variant_hook(
    KernelEvent,
    {},
    {
        **_add_events(PluginEvent, PLUGIN_EVENT_VARIANTS),
        **_add_events(ReloadEvent, RELOAD_EVENT_VARIANTS),
    },
)


def _typed(read: Hook) -> Callable[[Any, Any], Any]:
    """A cattrs structure hook from a one-argument reader; subclasses of the target are rebuilt."""

    def hook(value: Any, target: Any) -> Any:
        result = read(value)
        if isinstance(target, type) and not isinstance(result, target):
            try:
                return target(result)
            except (TypeError, ValueError) as exc:
                raise Invalid(str(exc)) from None
        return result

    return hook


def _untyped(read: Hook) -> Callable[[Any, Any], Any]:
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
    scalars: tuple[tuple[type, Hook], ...] = (
        (str, read_str),
        (bool, read_bool),
        (int, read_int),
        (float, read_float),
        (Path, read_path),
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
    for cls, write in WRITERS.items():
        if attrs.has(cls):
            conv.register_unstructure_hook_func(_is(cls), write)
        else:
            conv.register_unstructure_hook(cls, write)
    return conv


#: The cattrs converter that carries every wire-format hook. Derive from it
#: (``converter.copy()``) to add hooks of your own;
#: :func:`~mofa_kernel._wire._errors.error_lines` reads its errors.
converter: Final = _make_converter()


def to_data(value: object) -> JSONValue:
    """``value`` as plain JSON data in serde's shape: what ``serde_json::to_value`` would give.

    Takes the kernel's types, and dicts, lists and scalars that hold them.
    NaN and infinities become ``None``; integers beyond i64/u64 become floats.
    Raises :class:`TypeError` for anything JSON cannot carry and
    :class:`~mofa_kernel.SerializationError` for values Rust could not read back.
    """
    try:
        return write_value(value, 1, False)
    except WriteError as exc:
        exc.raise_for("$")


def to_json(value: object) -> str:
    """``value`` as the compact JSON text serde_json writes for it, byte for byte."""
    data = to_data(value)
    text = encode(data)
    if not text.isascii() and SURROGATE.search(text):
        lines: list[str] = []
        surrogate_lines(data, "$", lines)
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
    except (Invalid, BaseValidationError) as exc:
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
    return from_data(target, parse(text))
