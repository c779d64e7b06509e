"""Bounds on a configuration file, checked before the TOML parser sees it.

``tomllib`` recurses once per level of nesting and builds one dictionary per
dotted-key part: a file nested a few hundred levels deep ends in a
``RecursionError`` traceback, and a dotted key 30,000 parts long takes
gigabytes. :func:`read_config_bytes` refuses a file larger than
:data:`MAX_BYTES` without reading more than that, and :func:`check_depth`
measures nesting in one pass over the text, in constant memory, stopping at
the first place deeper than :data:`MAX_DEPTH`. Both raise
:class:`~mofa_kernel.PluginConfigError` with one line naming the file.

Depth counts every level a value sits under: each part of a table header
(``[a.b]`` is 2) and of a dotted key (``a.b.c = 1`` adds 3), each array and
each inline table. The scan only measures; the parser reports syntax errors.
"""

from __future__ import annotations

import os
import re
from typing import Final

from ._errors import PluginConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "check_depth", "read_config_bytes"]

#: The largest configuration file read, in bytes (10 MiB).
MAX_BYTES: Final = 10 * 1024 * 1024
#: The deepest nesting accepted: tables, arrays, inline tables and dotted-key parts together.
MAX_DEPTH: Final = 100

_BARE: Final = re.compile(r"[A-Za-z0-9_-]+")
_BLANK: Final = re.compile(r"[ \t\r]*")
_SCALAR: Final = re.compile(r"[^,\]}\n#\[{\"' \t\r]+")
_BASIC: Final = re.compile(r'(?:[^"\\\n]|\\.)*"')
_LITERAL: Final = re.compile(r"[^'\n]*'")


def read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or :class:`~mofa_kernel.PluginConfigError` when it is larger than
    :data:`MAX_BYTES` (never reading more than that). ``OSError`` propagates."""
    chunks: list[bytes] = []
    size = 0
    with open(path, "rb") as file:
        # Read in pieces: ``read(MAX_BYTES + 1)`` would set aside the whole limit up front.
        while chunk := file.read(1 << 16):
            size += len(chunk)
            if size > MAX_BYTES:
                raise PluginConfigError(
                    f"{os.fspath(path)}: the configuration file is larger than 10 MiB (the limit)"
                )
            chunks.append(chunk)
    return b"".join(chunks)


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Scanner:
    """One pass over TOML text that tracks how deep each value sits."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        #: Open arrays and inline tables: (kind, depth of what they contain).
        self.stack: list[tuple[str, int]] = []

    def check(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep(self.line)

    def blank(self) -> None:
        self.i = _BLANK.match(self.text, self.i).end()  # type: ignore[union-attr]

    def string(self) -> None:
        """Skip the string starting at ``i`` (any of the four kinds)."""
        text, i = self.text, self.i
        quote = text[i]
        if text.startswith(quote * 3, i):
            end = text.find(quote * 3, i + 3)
            if quote == '"':
                while end != -1 and _escaped(text, end):
                    end = text.find(quote * 3, end + 1)
            end = len(text) if end == -1 else end + 3
            while end < len(text) and text[end] == quote:  # up to two quotes may close it
                end += 1
        else:
            match = (_BASIC if quote == '"' else _LITERAL).match(text, i + 1)
            end = match.end() if match else i + 1
        self.line += text.count("\n", i, end)
        self.i = end

    def key(self, container: int) -> int:
        """Read a (dotted) key at ``i``; return its number of parts, checking depth as it goes."""
        parts = 0
        text = self.text
        while self.i < len(text):
            self.blank()
            if self.i < len(text) and text[self.i] in "\"'":
                self.string()
            else:
                match = _BARE.match(text, self.i)
                if match is None:
                    break
                self.i = match.end()
            parts += 1
            self.check(container + parts)
            self.blank()
            if self.i < len(text) and text[self.i] == ".":
                self.i += 1
                continue
            break
        return parts

    def run(self) -> None:
        text = self.text
        header = 0
        mode = "key"
        pending = 0
        while self.i < len(text):
            c = text[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n":
                self.line += 1
                self.i += 1
                if not self.stack:
                    mode = "key"
            elif c == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end == -1 else end
            elif mode == "key":
                if c == "[" and not self.stack:
                    self.i += 2 if text.startswith("[[", self.i) else 1
                    header = self.key(0)
                    mode = "after"
                elif c == "}" and self.stack:
                    self.stack.pop()
                    self.i += 1
                    mode = "after"
                else:
                    container = self.stack[-1][1] if self.stack else header
                    start = self.i
                    parts = self.key(container)
                    self.blank()
                    if self.i < len(text) and text[self.i] == "=":
                        self.i += 1
                    elif self.i == start:
                        self.i += 1  # not a key: the parser will say what it is
                    pending = container + parts
                    mode = "value"
            elif mode == "value":
                if c == "[":
                    pending += 1
                    self.check(pending)
                    self.stack.append(("array", pending))
                    self.i += 1
                elif c == "{":
                    self.stack.append(("table", pending))
                    self.i += 1
                    mode = "key"
                elif c in "]}":
                    if self.stack:
                        self.stack.pop()
                    self.i += 1
                    mode = "after"
                elif c in "\"'":
                    self.string()
                    mode = "after"
                else:
                    match = _SCALAR.match(text, self.i)
                    self.i = match.end() if match else self.i + 1
                    mode = "after"
            elif c == "," and self.stack:
                kind, depth = self.stack[-1]
                mode = "value" if kind == "array" else "key"
                pending = depth
                self.i += 1
            elif c in "]}" and self.stack:
                self.stack.pop()
                self.i += 1
            else:
                self.i += 1  # anything else: the parser will say what it is


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index > 0 and text[index - 1] == "\\":
        backslashes += 1
        index -= 1
    return backslashes % 2 == 1


def check_depth(text: str, path: str | os.PathLike[str]) -> str:
    """``text``, or :class:`~mofa_kernel.PluginConfigError` when something in it is nested
    more than :data:`MAX_DEPTH` levels deep (the line where the limit is crossed)."""
    try:
        _Scanner(text).run()
    except _TooDeep as exc:
        raise PluginConfigError(
            f"{os.fspath(path)}:{exc.line}: nested more than {MAX_DEPTH} levels deep "
            f"(tables, arrays, inline tables and dotted keys count); the limit is {MAX_DEPTH}"
        ) from None
    return text
