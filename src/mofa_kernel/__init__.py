"""mofa-kernel: the plugin kernel of MoFA for Python.

Plugins come from installed distributions (entry-point group ``mofa.plugins``)
or are registered in-process; :class:`PluginManager` orders them by their
dependencies, drives their async lifecycle, isolates their failures and
hot-reloads their code.

Importing this package discovers, loads and starts nothing, and imports
nothing either: each public name is imported the first time it is used (the
model as a whole, the manager with its asyncio machinery, the cattrs
converter), so that ``mofa-kernel plugins list`` can answer from the cache
without them.
"""

import importlib as _importlib

from ._public import publish as _publish

# typing.TYPE_CHECKING without importing typing: ``import mofa_kernel`` imports nothing heavy.
# Spelt TYPE_CHECKING so that every type checker recognises it; deleted below.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._config import HotReloadSection, KernelSection, KernelSettings, PluginSection
    from ._context import PluginContext, SharedState
    from ._errors import (
        DependencyCycleError,
        DependencyError,
        DiscoveryError,
        InvalidStateError,
        MissingDependencyError,
        PluginConfigError,
        PluginError,
        PluginExecutionError,
        PluginInitError,
        PluginLifecycleError,
        PluginLoadError,
        PluginNotFoundError,
        PluginTimeoutError,
        SerializationError,
    )
    from ._event_bus import Subscription
    from ._events import KernelEvent, PluginEvent, ReloadEvent
    from ._hookspecs import LifecycleHooks, hookimpl, hookspec
    from ._manager import PluginManager
    from ._metadata import JSONValue, PluginConfig, PluginMetadata
    from ._plugin import AgentPlugin, HotReloadable
    from ._records import DiscoveryReport, LifecycleReport, Outcome, PluginRecord
    from ._reload import HotReloader
    from ._reload_config import HotReloadConfig, ReloadStrategy
    from ._source import PluginSource
    from ._types import PluginPriority, PluginState, PluginType
    from ._wire import from_json, to_json
del TYPE_CHECKING

__all__ = [
    "AgentPlugin",
    "DependencyCycleError",
    "DependencyError",
    "DiscoveryError",
    "DiscoveryReport",
    "HotReloadConfig",
    "HotReloadSection",
    "HotReloadable",
    "HotReloader",
    "InvalidStateError",
    "JSONValue",
    "KernelEvent",
    "KernelSection",
    "KernelSettings",
    "LifecycleHooks",
    "LifecycleReport",
    "MissingDependencyError",
    "Outcome",
    "PluginConfig",
    "PluginConfigError",
    "PluginContext",
    "PluginError",
    "PluginEvent",
    "PluginExecutionError",
    "PluginInitError",
    "PluginLifecycleError",
    "PluginLoadError",
    "PluginManager",
    "PluginMetadata",
    "PluginNotFoundError",
    "PluginPriority",
    "PluginRecord",
    "PluginSection",
    "PluginSource",
    "PluginState",
    "PluginTimeoutError",
    "PluginType",
    "ReloadEvent",
    "ReloadStrategy",
    "SerializationError",
    "SharedState",
    "Subscription",
    "__version__",
    "from_json",
    "hookimpl",
    "hookspec",
    "to_json",
]

#: The model: loaded as a whole the first time one of its names is used, so that every
#: public class shows as ``mofa_kernel.X`` from then on.
_MODEL = {
    "AgentPlugin": "._plugin",
    "DependencyCycleError": "._errors",
    "DependencyError": "._errors",
    "DiscoveryError": "._errors",
    "HotReloadConfig": "._reload_config",
    "HotReloadable": "._plugin",
    "InvalidStateError": "._errors",
    "JSONValue": "._metadata",
    "KernelEvent": "._events",
    "MissingDependencyError": "._errors",
    "PluginConfig": "._metadata",
    "PluginConfigError": "._errors",
    "PluginContext": "._context",
    "PluginError": "._errors",
    "PluginEvent": "._events",
    "PluginExecutionError": "._errors",
    "PluginInitError": "._errors",
    "PluginLifecycleError": "._errors",
    "PluginLoadError": "._errors",
    "PluginMetadata": "._metadata",
    "PluginNotFoundError": "._errors",
    "PluginPriority": "._types",
    "PluginState": "._types",
    "PluginTimeoutError": "._errors",
    "PluginType": "._types",
    "ReloadEvent": "._events",
    "ReloadStrategy": "._reload_config",
    "SerializationError": "._errors",
    "SharedState": "._context",
    "hookimpl": "._hookspecs",
    "hookspec": "._hookspecs",
}

# Public name -> private module, imported on first access (PEP 562): ``import mofa_kernel``
# itself imports nothing, so that the command line's fast paths start at once.
_LAZY = {
    **_MODEL,
    # What the manager hands back to a host: reports, records, its settings, its reloader.
    "DiscoveryReport": "._records",
    "HotReloadSection": "._config",
    "HotReloader": "._reload",
    "KernelSection": "._config",
    "KernelSettings": "._config",
    "LifecycleHooks": "._hookspecs",
    "LifecycleReport": "._records",
    "Outcome": "._records",
    "PluginRecord": "._records",
    "PluginSection": "._config",
    "PluginSource": "._source",
    "Subscription": "._event_bus",
    "PluginManager": "._manager",
    "from_json": "._wire",
    "to_json": "._wire",
}


def _load_model() -> None:
    """Bind every model name in this namespace, then show each class as ``mofa_kernel.X``."""
    namespace = globals()
    for name, module in _MODEL.items():
        namespace[name] = getattr(_importlib.import_module(module, __name__), name)
    for name in _MODEL:
        if isinstance(namespace[name], type):
            _publish(namespace[name])


def __getattr__(name: str) -> "Any":
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("mofa-kernel")
    elif name in _LAZY:
        if "AgentPlugin" not in globals():
            _load_model()
        if name in _MODEL:
            return globals()[name]
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        if isinstance(value, type):
            _publish(value)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
