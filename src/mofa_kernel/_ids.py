"""What a plugin id may be: the one rule, for discovery and for ``register()``.

A plugin id is shown in terminals, logs, events and configuration paths
(``plugins.ID.enabled``). An empty id, whitespace, a control character, a
terminal escape or a bidi override (U+202E turns ``calc\u202eexe`` into
something else on screen) would make those lie or break, so none is accepted.
"""

from __future__ import annotations

import unicodedata

from ._errors import PluginLoadError

__all__ = ["check_plugin_id", "plugin_id_problem"]

#: Unicode categories refused anywhere in an id: controls, formats (bidi, zero-width),
#: surrogates, private use, unassigned, and every kind of separator (spaces, line breaks).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def plugin_id_problem(plugin_id: object) -> str | None:
    """Why ``plugin_id`` cannot be a plugin id (a phrase such as ``"contains U+202E"``),
    or ``None`` when it can."""
    if not isinstance(plugin_id, str):
        return f"is a {type(plugin_id).__name__}, not a string"
    if not plugin_id:
        return "is empty"
    for char in plugin_id:
        if char.isspace() or unicodedata.category(char) in _REFUSED_CATEGORIES:
            name = unicodedata.name(char, "a control or unassigned character")
            return f"contains U+{ord(char):04X} ({name.lower()})"
    return None


def check_plugin_id(plugin_id: object, *, origin: str = "") -> None:
    """Raise :class:`~mofa_kernel.PluginLoadError` with one line when ``plugin_id`` is not a
    valid plugin id; ``origin`` says where it comes from (``"from mofa-x 1.0 (x:P)"``)."""
    problem = plugin_id_problem(plugin_id)
    if problem is not None:
        where = f" {origin}" if origin else ""
        raise PluginLoadError(
            f"invalid plugin id {_shown(plugin_id)}{where}: it {problem}",
            plugin_id=plugin_id if isinstance(plugin_id, str) else None,
        )


def _shown(plugin_id: object) -> str:
    """``repr`` with every non-ASCII character escaped, so the message is safe to print."""
    return ascii(plugin_id)
