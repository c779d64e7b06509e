"""How the commands talk: tables and JSON on stdout, one line per error on stderr, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Final, TextIO

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Output", "UsageError", "format_table"]

#: Everything worked.
EXIT_OK: Final = 0
#: A plugin failed (or could not run).
EXIT_FAILED: Final = 1
#: Bad usage: unknown id, unknown option, bad configuration file.
EXIT_USAGE: Final = 2

PROG: Final = "mofa-kernel"


class UsageError(Exception):
    """A command was asked for something that cannot be (unknown id, excluded plugin): exit 2."""


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, headers first, without trailing blanks."""
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
        print(text, file=self.stdout, flush=True)

    def json(self, data: object) -> None:
        print(json.dumps(data, indent=2, ensure_ascii=False), file=self.stdout, flush=True)

    def error(self, message: str) -> None:
        """Each line of ``message`` on stderr, prefixed with the program's name."""
        for text in message.splitlines() or [""]:
            print(f"{PROG}: {text}", file=self.stderr, flush=True)
