"""The exception hierarchy of mofa-kernel.

Every error the kernel raises derives from :class:`PluginError`::

    PluginError (Exception)
    ├── PluginLoadError
    ├── PluginInitError
    ├── PluginExecutionError
    ├── PluginLifecycleError
    ├── PluginTimeoutError (also TimeoutError)
    ├── PluginNotFoundError (also KeyError)
    ├── InvalidStateError (also RuntimeError)
    ├── PluginConfigError (also ValueError)
    ├── SerializationError (also ValueError)
    ├── DiscoveryError
    └── DependencyError
        ├── MissingDependencyError
        └── DependencyCycleError

Each carries ``plugin_id`` where one plugin is concerned, ``hook`` where one
lifecycle step failed, and, where known, the ``distribution`` and
``entry_point`` the plugin came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._types import PluginState

__all__ = [
    "DependencyCycleError",
    "DependencyError",
    "DiscoveryError",
    "InvalidStateError",
    "MissingDependencyError",
    "PluginConfigError",
    "PluginError",
    "PluginExecutionError",
    "PluginInitError",
    "PluginLifecycleError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginTimeoutError",
    "SerializationError",
]


class PluginError(Exception):
    """Base class of every error raised by mofa-kernel."""

    def __init__(
        self,
        message: str,
        *,
        plugin_id: str | None = None,
        hook: str | None = None,
        distribution: str | None = None,
        entry_point: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.plugin_id = plugin_id
        self.hook = hook
        self.distribution = distribution
        self.entry_point = entry_point

    def __str__(self) -> str:
        return self.message


class PluginLoadError(PluginError):
    """A plugin could not be imported, built or loaded."""


class PluginInitError(PluginError):
    """A plugin's ``init_plugin`` failed."""


class PluginExecutionError(PluginError):
    """A plugin's ``execute`` failed.

    A plugin raises it itself to reject one input (the plugin stays running);
    the manager raises it when ``execute`` crashed (the plugin is then in the
    error state).
    """


class PluginLifecycleError(PluginError):
    """A plugin's ``start``, ``pause``, ``resume``, ``stop`` or ``unload`` failed."""


class PluginNotFoundError(PluginError, KeyError):
    """No plugin with that id is known to the manager."""

    def __str__(self) -> str:
        # KeyError would quote the message; show it as written.
        return self.message


class PluginTimeoutError(PluginError, TimeoutError):
    """A lifecycle call or an execute did not finish within its deadline."""

    def __init__(
        self,
        message: str,
        *,
        plugin_id: str | None = None,
        hook: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(message, plugin_id=plugin_id, hook=hook)
        self.timeout = timeout


class InvalidStateError(PluginError, RuntimeError):
    """An operation was asked of a plugin in a state that does not allow it.

    ``expected`` lists the states that would have allowed it; ``actual`` is the
    state the plugin was in. Nothing was changed.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin_id: str | None = None,
        hook: str | None = None,
        expected: Sequence[PluginState] = (),
        actual: PluginState | None = None,
    ) -> None:
        super().__init__(message, plugin_id=plugin_id, hook=hook)
        self.expected = tuple(expected)
        self.actual = actual


class PluginConfigError(PluginError, ValueError):
    """Configuration is missing, malformed, or of the wrong type."""


class SerializationError(PluginError, ValueError):
    """JSON or TOML input could not be turned into the kernel's types.

    ``errors`` holds one line per bad field, each naming its path
    (``$.priority: unknown variant 'normal' ...``); ``str()`` joins them.
    """

    def __init__(self, errors: Sequence[str], *, plugin_id: str | None = None) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors), plugin_id=plugin_id)


class DiscoveryError(PluginError):
    """An installed plugin could not be discovered or was refused."""


class DependencyError(PluginError):
    """A plugin's dependencies cannot be satisfied.

    ``chain`` is the sequence of plugin ids that leads to the problem.
    """

    def __init__(
        self, message: str, *, plugin_id: str | None = None, chain: Sequence[str] = ()
    ) -> None:
        super().__init__(message, plugin_id=plugin_id)
        self.chain = tuple(chain)


class MissingDependencyError(DependencyError):
    """A plugin depends on an id that is not registered."""


class DependencyCycleError(DependencyError):
    """Plugins depend on each other in a cycle; ``chain`` starts and ends on the same id."""


# Characters str.splitlines() breaks on that json.dumps(ensure_ascii=False) writes raw.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def quoted(text: str, *, ascii_only: bool = False) -> str:
    """``text`` as a JSON string that stays on one line of an error message."""
    import json

    return json.dumps(text, ensure_ascii=ascii_only).translate(_LINE_BREAKS)
