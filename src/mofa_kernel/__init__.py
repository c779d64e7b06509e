"""mofa-kernel: the plugin kernel of MoFA for Python.

Plugins come from installed distributions (entry-point group ``mofa.plugins``)
or are registered in-process; :class:`PluginManager` orders them by their
dependencies, drives their async lifecycle, isolates their failures and
hot-reloads their code.

Importing this package discovers, loads and starts nothing. Heavier parts
(the manager and its asyncio machinery, the cattrs converter) are imported on
first use.
"""

import importlib as _importlib
import typing as _typing

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
from ._events import KernelEvent, PluginEvent, ReloadEvent
from ._hookspecs import hookimpl, hookspec
from ._metadata import JSONValue, PluginConfig, PluginMetadata
from ._plugin import AgentPlugin, HotReloadable
from ._public import publish as _publish
from ._reload_config import HotReloadConfig, ReloadStrategy
from ._types import PluginPriority, PluginState, PluginType

if _typing.TYPE_CHECKING:
    from ._manager import PluginManager
    from ._serde import from_json, to_json

__all__ = [
    "AgentPlugin",
    "DependencyCycleError",
    "DependencyError",
    "DiscoveryError",
    "HotReloadConfig",
    "HotReloadable",
    "InvalidStateError",
    "JSONValue",
    "KernelEvent",
    "MissingDependencyError",
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
    "PluginState",
    "PluginTimeoutError",
    "PluginType",
    "ReloadEvent",
    "ReloadStrategy",
    "SerializationError",
    "SharedState",
    "__version__",
    "from_json",
    "hookimpl",
    "hookspec",
    "to_json",
]

# Public name -> private module, imported on first access (PEP 562).
_LAZY = {
    "PluginManager": "._manager",
    "from_json": "._serde",
    "to_json": "._serde",
}


def __getattr__(name: str) -> _typing.Any:
    if name == "__version__":
        from importlib.metadata import version

        value: _typing.Any = version("mofa-kernel")
    elif name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        if isinstance(value, type):
            _publish(value)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _set_public_module() -> None:
    # Tracebacks, reprs and docs show ``mofa_kernel.X``, not the private module.
    for name in __all__:
        obj = globals().get(name)
        if isinstance(obj, type) and obj.__module__.startswith(f"{__name__}._"):
            _publish(obj)


_set_public_module()
