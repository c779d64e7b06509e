"""Parsing JSON text the way serde_json does: what its lexer refuses, Python's json refuses too.

What depends on the target type (numbers out of range, lone surrogates in
strings, duplicate fields, nesting) is kept in the parsed data and left to
the readers, as serde skips unknown fields without looking into them.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, NoReturn

from mofa_kernel._errors import SerializationError

from ._limits import I64_MIN, SURROGATE, U64_MAX, OutOfRange

__all__ = ["parse"]


class _NotJSON(Exception):
    """A token Python's json reads and JSON (so serde_json) does not have."""


def _parse_int(text: str) -> int | float | OutOfRange:
    if text == "-0":
        return -0.0
    if len(text) <= 21:  # at most 20 digits and a sign: may fit i64 or u64
        number = int(text)
        if I64_MIN <= number <= U64_MAX:
            return number
    # Beyond i64/u64 serde_json reads an integer as an f64.
    return _parse_float(text)


def _parse_float(text: str) -> float | OutOfRange:
    number = float(text)
    return OutOfRange(text) if math.isinf(number) else number


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


def parse(text: str | bytes | bytearray | memoryview) -> Any:
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
    elif not text.isascii() and (found := SURROGATE.search(text)):
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
