"""What serde_json's types can hold, and how Rust spells a float: limits both directions obey."""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = [
    "I64_MIN",
    "MAX_DEPTH",
    "SURROGATE",
    "U32_MAX",
    "U64_MAX",
    "OutOfRange",
    "float_text",
]

#: serde_json refuses input nested deeper than this many arrays and objects in total.
MAX_DEPTH: Final = 127
I64_MIN: Final = -(2**63)
U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1
#: A lone surrogate, which a Rust string cannot hold.
SURROGATE: Final = re.compile("[\ud800-\udfff]")


@attrs.frozen
class OutOfRange:
    """A JSON number beyond the f64 range, as written.

    serde_json refuses it only where it reads the value: inside an unknown
    field, which it skips, it is accepted. So parsing keeps it and the hooks
    that read a value refuse it.
    """

    text: str


def float_text(number: float) -> str:
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
