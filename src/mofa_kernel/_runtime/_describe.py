"""Describing an exception from plugin code in one line, whatever the exception does."""

from __future__ import annotations

import os
import traceback

__all__ = ["describe"]


def _safe_text(value: object, fallback: str) -> str:
    """``str(value)``, or ``fallback`` when even that raises."""
    try:
        return str(value)
    except BaseException:  # noqa: BLE001 - a plugin's __str__ may raise anything
        return fallback


def describe(exc: BaseException) -> str:
    """``ValueError: boom (plugin.py:12)``: the exception and the plugin line that raised it.

    Safe for any exception, including one whose ``str()`` raises.
    """
    name = _safe_text(getattr(type(exc), "__name__", None), "exception")
    message = _safe_text(exc, "<str() of the exception raised>")
    text = f"{name}: {message}" if message else name
    try:
        frames = traceback.extract_tb(exc.__traceback__)
    except Exception:  # noqa: BLE001 - an unreadable traceback leaves the text without a line
        return text
    own = os.path.dirname(os.path.dirname(__file__))
    for frame in reversed(frames):
        if not frame.filename.startswith(own) and "asyncio" not in frame.filename:
            return f"{text} ({os.path.basename(frame.filename)}:{frame.lineno})"
    return text
