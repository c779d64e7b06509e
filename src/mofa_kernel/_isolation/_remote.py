"""The context an isolated plugin receives in its worker: :class:`RemoteContext`.

It is a :class:`~mofa_kernel.PluginContext` whose shared state and event
stream are the host's: every call is a request over the worker's pipe,
answered by the host's own context of that plugin. Values cross as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mofa_kernel._context import PluginContext

if TYPE_CHECKING:
    import asyncio

    from mofa_kernel._events import KernelEvent
    from mofa_kernel._metadata import PluginConfig

__all__ = ["RemoteContext"]


class _Requester(Protocol):
    def request(self, op: str, args: list[Any]) -> asyncio.Future[Any]: ...


class RemoteContext(PluginContext):
    """A plugin context in a worker process, served by the host's context over the pipe."""

    __slots__ = ("_requester",)

    def __init__(
        self, requester: _Requester, agent_id: str, config: PluginConfig, plugin_id: str | None
    ) -> None:
        super().__init__(agent_id, config, plugin_id=plugin_id)
        self._requester = requester

    def __repr__(self) -> str:
        return f"RemoteContext(agent_id={self.agent_id!r}, plugin_id={self.plugin_id!r})"

    async def get_state(self, key: str, default: Any = None) -> Any:
        """The host's shared value under ``key``, or ``default`` when missing."""
        found, value = await self._requester.request("get", [key])
        return value if found else default

    async def set_state(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON data) under ``key`` in the host's shared state."""
        await self._requester.request("set", [key, value])

    async def remove_state(self, key: str) -> Any:
        """Delete ``key`` in the host and return its value (``None`` if it was missing)."""
        return await self._requester.request("remove", [key])

    async def update_state(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Replace the host's value of ``key`` by ``fn(old)``; retried if another writer won."""
        while True:
            found, old = await self._requester.request("get", [key])
            new = fn(old if found else None)
            swapped = await self._requester.request("swap", [key, found, old, new])
            if swapped:
                return new

    async def emit_event(self, event: KernelEvent) -> None:
        """Send ``event`` into the host's event stream."""
        from mofa_kernel._wire import to_data

        await self._requester.request("emit", [to_data(event)])
