"""Wire-format errors: one bad value, its path, and the one walker that flattens cattrs errors.

:func:`error_lines` turns a cattrs validation error into one line per bad
value with its path; the wire format (:mod:`mofa_kernel._wire`) and the
configuration (:mod:`mofa_kernel._config`) both show their errors with it.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)

from mofa_kernel._errors import quoted

from ._limits import SURROGATE, OutOfRange, float_text

__all__ = [
    "Invalid",
    "Join",
    "Leaf",
    "describe",
    "error_lines",
    "field_note",
    "index_note",
    "join",
    "noted",
    "quote",
]

#: How a key extends a path: ``(path, key, is_a_field_name) -> path``.
Join = Callable[[str, "int | str", bool], str]
#: The lines for one error that is not a group of errors, at ``path``.
Leaf = Callable[[BaseException, str], list[str]]

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+\Z")


class Invalid(ValueError):
    """One bad value; the message says what was expected and what came."""


def noted(exc: Exception, note: str) -> Exception:
    """``exc`` with ``note`` (a cattrs note giving where it happened) attached."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        # 3.10 has no add_note; cattrs and the exceptiongroup backport read this attribute.
        setattr(exc, "__notes__", [*getattr(exc, "__notes__", ()), note])  # noqa: B010
    return exc


def field_note(name: str, owner: Any) -> AttributeValidationNote:
    """The note saying an error is in field ``name`` of ``owner``."""
    return AttributeValidationNote(f"Structuring field {name}", name, owner)


def index_note(index: int | str, owner: Any) -> IterableValidationNote:
    """The note saying an error is at ``index`` (a list index or a mapping key) of ``owner``."""
    return IterableValidationNote(f"Structuring element {index!r}", index, owner)


def join(path: str, key: int | str, field: bool = False) -> str:
    """``path`` extended by a field name, a list index or a mapping key, as a JSON path."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if field or _BARE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{quoted(key, ascii_only=bool(SURROGATE.search(key)))}]"


def error_lines(
    exc: BaseException, root: str = "$", *, join: Join = join, leaf: Leaf | None = None
) -> list[str]:
    """Flatten a structuring error into one ``"<path>: <problem>"`` line per bad value.

    Understands the notes cattrs attaches (fields as ``.name``, list indices as
    ``[i]``, mapping keys as ``.key`` or ``["odd key"]``), so it serves the
    errors of converters derived from the wire converter too. ``root`` starts
    every path: ``"$"`` for JSON documents. The configuration walks its own
    errors with it too, passing ``join`` (how a key extends a path: TOML's
    dotted keys) and ``leaf`` (the lines for one error that is not a group).
    """
    lines: list[str] = []
    _flatten(exc, root, lines, join, leaf or _leaf_lines)
    return lines


def _flatten(exc: BaseException, path: str, lines: list[str], join: Join, leaf: Leaf) -> None:
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = join(path, note.name, True)
                    break
                if isinstance(note, IterableValidationNote):
                    sub_path = join(path, note.index, False)
                    break
            _flatten(sub, sub_path, lines, join, leaf)
    else:
        lines.extend(leaf(exc, path))


def _leaf_lines(exc: BaseException, path: str) -> list[str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        return [f"{join(path, key)}: unknown field" for key in sorted(exc.extra_fields)]
    return [f"{path}: {_message(exc)}" if path else _message(exc)]


def _message(exc: BaseException) -> str:
    if isinstance(exc, Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        # How cattrs' generated hooks report a missing required field.
        return "missing field"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def quote(text: str) -> str:
    """A string quoted for a message, cut to 40 characters."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def describe(value: object) -> str:
    """What ``value`` is, for a message: ``"integer 3"``, ``"an array"``, ``"null"``."""
    if isinstance(value, OutOfRange):
        return f"number out of range ({value.text[:40]})"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {int(value)}"
    if isinstance(value, float):
        return f"number {float_text(value) if math.isfinite(value) else value}"
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__qualname__}"
