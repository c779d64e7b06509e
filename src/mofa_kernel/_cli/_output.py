"""How the commands talk: tables and JSON on stdout, one line per error on stderr, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    import logging
    from typing import Final, TextIO

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Output",
    "UsageError",
    "escape",
    "escaping_formatter",
    "format_table",
]

#: Everything worked.
EXIT_OK: Final = 0
#: A plugin failed (or could not run).
EXIT_FAILED: Final = 1
#: Bad usage: unknown id, unknown option, bad configuration file.
EXIT_USAGE: Final = 2

PROG: Final = "mofa-kernel"


class UsageError(Exception):
    """A command was asked for something that cannot be (unknown id, excluded plugin): exit 2."""


def escape(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (controls, terminal escapes,
    bidi overrides such as U+202E, line separators) written as a Python escape (``\\x1b``,
    ``\\u202e``), except those in ``keep``. Plugins choose ids, outputs and error messages;
    none of that may move the cursor or reorder what the terminal shows."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escaped(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escaping_formatter(fmt: str) -> logging.Formatter:
    """A logging formatter that :func:`escape`-s each line it formats (warnings name plugins)."""
    import logging

    class _Escaping(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return "\n".join(escape(line, "\t") for line in super().format(record).split("\n"))

    return _Escaping(fmt)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, headers first, without trailing blanks.
    Cells are :func:`escape`-d (a newline in a cell would break the table)."""
    rows = [[escape(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


class Output:
    """The streams a command writes to, read from ``sys`` when the command runs."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr

    def line(self, text: str = "") -> None:
        """``text`` on stdout, :func:`escape`-d (newlines and tabs kept)."""
        print(escape(text, "\n\t"), file=self.stdout, flush=True)

    def json(self, data: object) -> None:
        """``data`` as indented JSON; characters that are not printable are ``\\u`` escapes."""
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if not text.isprintable():
            # Outside strings, JSON text has only printable characters and newlines.
            text = "".join(c if c.isprintable() or c == "\n" else _json_escaped(c) for c in text)
        print(text, file=self.stdout, flush=True)

    def error(self, message: str) -> None:
        """Each line of ``message`` on stderr, prefixed with the program's name and
        :func:`escape`-d."""
        for text in message.splitlines() or [""]:
            print(f"{PROG}: {escape(text, chr(9))}", file=self.stderr, flush=True)
