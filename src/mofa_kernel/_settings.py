"""Typed plugin settings: a plugin's ``settings_type`` filled from ``[plugins.ID.settings]``.

A class-style plugin may name an attrs class in its ``settings_type`` class
attribute. Before the plugin's ``load``, the kernel structures the plugin's
``PluginConfig.settings`` into that class with a strict cattrs converter (no
unknown keys, no silent conversions such as ``"3"`` to ``3``) and hands the
result over as ``ctx.settings``. Every problem is one line naming its path,
with a close match for a misspelt key::

    plugins.word-count.settings.min_lenght: unknown key; did you mean 'min_length'?

The same did-you-mean helper serves the configuration file's unknown keys and
the command line's unknown plugin ids.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._errors import PluginConfigError, quoted

if TYPE_CHECKING:  # cattrs is imported when a plugin's settings are structured, not before
    import cattrs

__all__ = [
    "PluginConfigError",
    "did_you_mean",
    "load_with_settings",
    "plugin_settings",
    "settings_path",
    "settings_type_of",
    "structure_plugin_settings",
    "unknown_plugin_tables",
]

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_KINDS: Final[tuple[tuple[type, str], ...]] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _key(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    part = text if _BARE_KEY.fullmatch(text) else quoted(text)
    return f"{path}.{part}" if path else part


def settings_path(plugin_id: str) -> str:
    """``plugins.ID.settings``, the dotted path of a plugin's settings table."""
    return _key(_key("plugins", plugin_id), "settings")


def _kind(value: object) -> str:
    for kind, name in _KINDS:
        if type(value) is kind:
            return name
    return "null" if value is None else type(value).__name__


class _Wrong(ValueError):
    """A value of the wrong type; the message is the whole problem."""


def _strict(kind: type, name: str) -> Callable[[object, object], Any]:
    def structure(value: object, _: object) -> Any:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Wrong("expected a finite number")
            return float(value)
        if type(value) is kind:
            return value
        raise _Wrong(f"expected {name}, got {_kind(value)}")

    return structure


@functools.cache
def _converter() -> cattrs.Converter:
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind, name in _KINDS[:4]:
        shown = "a number" if kind is float else name
        converter.register_structure_hook(kind, _strict(kind, shown))
    return converter


def _lines(exc: BaseException, path: str) -> list[str]:
    """One ``path: problem`` line per leaf of a cattrs error tree."""
    from cattrs.errors import (
        AttributeValidationNote,
        BaseValidationError,
        ForbiddenExtraKeysError,
        IterableValidationNote,
    )

    if isinstance(exc, ForbiddenExtraKeysError):
        known = [field.name for field in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        return [
            f"{_key(path, key)}: unknown key{did_you_mean(key, known)}"
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, BaseValidationError):
        lines: list[str] = []
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = _key(path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub_path = _key(path, note.index)
            if isinstance(sub, KeyError) and not isinstance(sub, BaseValidationError):
                lines.append(f"{sub_path}: missing (required)")
            else:
                lines.extend(_lines(sub, sub_path))
        return lines
    if isinstance(exc, _Wrong):
        return [f"{path}: {exc}"]
    message = " ".join(str(exc).split()) or type(exc).__name__
    return [f"{path}: {message}"]


def settings_type_of(plugin: object) -> object:
    """The ``settings_type`` a class-style plugin declares, or ``None``."""
    return getattr(type(plugin), "settings_type", None)


def structure_plugin_settings(
    plugin_id: str, settings_type: object, settings: Mapping[str, Any]
) -> object:
    """``settings`` structured into ``settings_type`` (or the dict itself when it is ``None``).

    Raises :class:`~mofa_kernel.PluginConfigError` (with ``plugin_id``) whose
    message has one line per problem, each naming its path under
    ``plugins.ID.settings``.
    """
    if settings_type is None:
        return settings
    path = settings_path(plugin_id)
    if not (isinstance(settings_type, type) and attrs.has(settings_type)):
        raise PluginConfigError(
            f"{path}: the plugin's settings_type must be an attrs class, got {settings_type!r}",
            plugin_id=plugin_id,
        )
    from cattrs.errors import BaseValidationError

    try:
        return _converter().structure(dict(settings), settings_type)
    except (BaseValidationError, _Wrong) as exc:
        raise PluginConfigError("\n".join(_lines(exc, path)), plugin_id=plugin_id) from None
    except (TypeError, ValueError) as exc:  # a validator or converter of the settings class
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise PluginConfigError(f"{path}: {message}", plugin_id=plugin_id) from None


def plugin_settings(plugin_id: str, plugin: object, settings: Mapping[str, Any]) -> object:
    """What ``ctx.settings`` is for ``plugin``: its ``settings_type`` filled, else the dict."""
    return structure_plugin_settings(plugin_id, settings_type_of(plugin), settings)


def load_with_settings(plugin_id: str, plugin: Any, ctx: Any) -> Any:
    """Fill ``ctx.settings`` for ``plugin``, then call (and return) ``plugin.load(ctx)``."""
    ctx.settings = plugin_settings(plugin_id, plugin, ctx.config.settings)
    return plugin.load(ctx)


def unknown_plugin_tables(tables: Iterable[str], known: Iterable[str]) -> list[str]:
    """A warning line for each ``[plugins.ID]`` table that names no plugin in ``known``."""
    ids = set(known)
    return [
        f"{_key('plugins', pid)}: no plugin with this id is installed{did_you_mean(pid, ids)}"
        for pid in sorted(set(tables) - ids)
    ]
