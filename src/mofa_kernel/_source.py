"""Where a discovered plugin comes from, and whether it may load: plain values, no imports.

:class:`PluginSource` is what discovery finds and the cache stores; every
module that needs the module or attribute an entry point names asks
:func:`entry_point_target`, which reads the value the way
``importlib.metadata.EntryPoint`` does (``"pkg.mod:obj [extra]"`` names module
``pkg.mod`` and attribute ``obj``; extras are never part of either).
:class:`Selection` is the rule that excludes plugins before they are
imported: autoload off, ``MOFA_PLUGINS``, ``kernel.allow``/``kernel.deny``,
``[plugins.ID] enabled = false``.

Nothing here imports plugin code, and ``importlib.metadata`` is imported only
when an entry point's value is first read.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Protocol

import attrs

from ._errors import quoted

__all__ = [
    "ENV_DISABLE_AUTOLOAD",
    "ENV_PLUGINS",
    "PLUGIN_GROUP",
    "ExclusionRule",
    "PluginSource",
    "Selection",
    "entry_point_target",
    "normalize_name",
    "toml_key",
]

#: The entry-point group that plugin distributions declare their plugins in.
PLUGIN_GROUP: Final = "mofa.plugins"
#: Comma-separated plugin ids: only these may load (set but empty: none).
ENV_PLUGINS: Final = "MOFA_PLUGINS"
#: Set to a true word (``1``, ``yes``...) to load no discovered plugin at all.
ENV_DISABLE_AUTOLOAD: Final = "MOFA_DISABLE_PLUGIN_AUTOLOAD"

_FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")

#: Tells why a plugin is excluded from loading, or ``None`` when it may load.
ExclusionRule = Callable[["PluginSource"], "str | None"]


_SEPARATORS: Final = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """A distribution name in its PEP 503 normal form (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return _SEPARATORS.sub("-", name).lower()


@functools.lru_cache(maxsize=1024)
def entry_point_target(value: str) -> tuple[str, str | None]:
    """The module and the dotted attribute (``None`` for a whole module) an entry point names.

    Read by ``importlib.metadata.EntryPoint``, as the import will be: spaces
    and extras (``pkg.mod:obj [extra]``) are dropped. A value that is no entry
    point at all comes back whole as the module, so that looking it up finds
    nothing rather than something else.
    """
    import importlib.metadata

    entry_point = importlib.metadata.EntryPoint(name="", value=value, group="")
    if entry_point.pattern.match(value) is None:
        return value, None  # .module would fail (an assertion from Python 3.13 on)
    return entry_point.module, entry_point.attr or None


@attrs.frozen
class PluginSource:
    """Where one discovered plugin comes from: its entry point and distribution.

    Reading a source never imports the plugin. ``requires_kernel`` is the
    distribution's version specifier on mofa-kernel (``">=0.1"``; ``""`` for
    any version), or ``None`` when it declares no such requirement.
    """

    plugin_id: str
    #: The entry point's value, ``"module:attr"``.
    entry_point: str
    distribution: str | None = None
    distribution_version: str | None = None
    #: The plugin module's file when the distribution records it, else the
    #: project folder of an editable install, else where the distribution is installed.
    path: Path | None = None
    requires_kernel: str | None = None
    group: str = PLUGIN_GROUP
    #: The distribution's metadata folder (``*.dist-info`` or ``*.egg-info``) when it is one
    #: on disk; what the metadata cache keys a plugin's metadata on.
    metadata_dir: Path | None = attrs.field(default=None, eq=False)

    @property
    def module(self) -> str:
        """The module the entry point imports, extras left out."""
        return entry_point_target(self.entry_point)[0]

    @property
    def attr(self) -> str | None:
        """The dotted attribute inside :attr:`module`, or ``None`` for a whole module."""
        return entry_point_target(self.entry_point)[1]

    def describe(self) -> str:
        """``"alpha-dist 1.0 (alpha:Plugin)"``: which distribution and entry point, for messages."""
        dist = self.distribution or "an unnamed distribution"
        if self.distribution_version:
            dist = f"{dist} {self.distribution_version}"
        return f"{dist} ({self.entry_point})"


def toml_key(path: str, key: object) -> str:
    """``path.key`` as TOML spells a dotted key, quoting ``key`` when it is not a bare key."""
    text = str(key)
    part = text if _BARE_KEY.fullmatch(text) else quoted(text)
    return f"{path}.{part}" if path else part


class _KernelTable(Protocol):
    @property
    def autoload(self) -> bool: ...
    @property
    def allow(self) -> tuple[str, ...]: ...
    @property
    def deny(self) -> tuple[str, ...]: ...


class _PluginTable(Protocol):
    @property
    def enabled(self) -> bool: ...


class _Settings(Protocol):
    """What :meth:`Selection.from_settings` reads of ``mofa_kernel._config.KernelSettings``."""

    @property
    def kernel(self) -> _KernelTable: ...
    @property
    def plugins(self) -> Mapping[str, _PluginTable]: ...


def _env_flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE_WORDS


@attrs.frozen
class Selection:
    """Which discovered plugins may load, from the configuration and the environment.

    Applies, in order: autoload off (``kernel.autoload = false`` or
    ``MOFA_DISABLE_PLUGIN_AUTOLOAD=1``) excludes everything; ``MOFA_PLUGINS``
    (comma-separated ids; set but empty means none) excludes the ids it does
    not name; ``kernel.deny`` and a non-empty ``kernel.allow`` match plugin ids
    or distribution names (compared in PEP 503 normal form); ``[plugins.ID]
    enabled = false`` excludes ID.
    """

    autoload_off_by: str | None = None
    only: frozenset[str] | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_settings(
        cls, settings: _Settings, environ: Mapping[str, str] | None = None
    ) -> Selection:
        """The selection that ``settings`` (a ``KernelSettings``) and ``environ`` make."""
        env = os.environ if environ is None else environ
        autoload_off_by = None
        if _env_flag(env.get(ENV_DISABLE_AUTOLOAD)):
            autoload_off_by = ENV_DISABLE_AUTOLOAD
        elif not settings.kernel.autoload:
            autoload_off_by = "kernel.autoload"
        only = env.get(ENV_PLUGINS)
        return cls(
            autoload_off_by=autoload_off_by,
            only=None if only is None else frozenset(filter(None, map(str.strip, only.split(",")))),
            allow=settings.kernel.allow,
            deny=settings.kernel.deny,
            disabled=frozenset(
                pid for pid, section in settings.plugins.items() if not section.enabled
            ),
        )

    @staticmethod
    def _matches(names: tuple[str, ...], source: PluginSource) -> bool:
        dist = normalize_name(source.distribution) if source.distribution else None
        return any(
            name == source.plugin_id or (dist is not None and normalize_name(name) == dist)
            for name in names
        )

    def exclusion_reason(self, source: PluginSource) -> str | None:
        """Why ``source`` must not be imported, as a short phrase, or ``None`` when it may."""
        if self.autoload_off_by is not None:
            return f"autoload disabled by {self.autoload_off_by}"
        if self.only is not None and source.plugin_id not in self.only:
            return f"not in {ENV_PLUGINS}"
        if self._matches(self.deny, source):
            return "denied by kernel.deny"
        if self.allow and not self._matches(self.allow, source):
            return "not in kernel.allow"
        if source.plugin_id in self.disabled:
            return f"disabled by {toml_key('plugins', source.plugin_id)}.enabled"
        return None
