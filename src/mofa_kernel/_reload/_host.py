"""What hot reload needs of the manager that owns it: its public verbs, as a protocol.

The reloader never imports the manager: it is given an object with these
methods (the :class:`~mofa_kernel.PluginManager`) and, for what goes beyond
them, the runtime's :class:`~mofa_kernel._runtime.ReloadPort`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mofa_kernel._events import KernelEvent
from mofa_kernel._plugin import AgentPlugin
from mofa_kernel._records import DiscoveryReport, LifecycleReport, PluginRecord
from mofa_kernel._reload_config import HotReloadConfig
from mofa_kernel._types import PluginState

__all__ = ["ReloadHost"]


class ReloadHost(Protocol):
    """The public surface of a plugin manager that hot reload drives."""

    @property
    def hot_reload(self) -> HotReloadConfig: ...

    def plugin_ids(self) -> list[str]: ...

    def record(self, plugin_id: str) -> PluginRecord: ...

    def records(self) -> list[PluginRecord]: ...

    def get(self, plugin_id: str) -> AgentPlugin: ...

    def state(self, plugin_id: str) -> PluginState: ...

    def emit(self, event: KernelEvent) -> None: ...

    def add_listener(self, listener: Callable[[KernelEvent], Any]) -> None: ...

    def remove_listener(self, listener: Callable[[KernelEvent], Any]) -> None: ...

    def discover(self) -> DiscoveryReport: ...

    async def load(self, plugin_id: str) -> None: ...

    async def init_plugin(self, plugin_id: str) -> None: ...

    async def start(self, plugin_id: str) -> None: ...

    async def start_all(self, ids: list[str] | None = None) -> LifecycleReport: ...

    async def stop(self, plugin_id: str) -> None: ...

    async def unload(self, plugin_id: str) -> None: ...

    async def wait_idle(self, plugin_id: str, timeout: float | None = None) -> bool: ...
