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

The parts: ``_limits`` (what serde_json's types hold), ``_errors`` (one bad
value, and the walker that flattens cattrs errors), ``_json`` (parsing text
as serde_json does), ``_read`` and ``_write`` (serde's rules each way),
``_converter`` (the kernel's types and the public calls). The names below are
imported on first use, so that :func:`error_lines` costs no converter.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._converter import converter, from_data, from_json, to_data, to_json
    from ._errors import error_lines
    from ._limits import MAX_DEPTH

__all__ = [
    "MAX_DEPTH",
    "converter",
    "error_lines",
    "from_data",
    "from_json",
    "to_data",
    "to_json",
]

_WHERE = {
    "MAX_DEPTH": "._limits",
    "converter": "._converter",
    "error_lines": "._errors",
    "from_data": "._converter",
    "from_json": "._converter",
    "to_data": "._converter",
    "to_json": "._converter",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
