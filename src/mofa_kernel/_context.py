"""What a plugin receives in ``load(ctx)``: :class:`PluginContext`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._events import KernelEvent
from ._metadata import PluginConfig

__all__ = ["EventSink", "PluginContext", "SharedState"]

#: Where :meth:`PluginContext.emit_event` sends events: the kernel's event stream.
EventSink = Callable[[KernelEvent], None]


class SharedState:
    """A key-value store shared by all plugins of one kernel.

    Safe under concurrent tasks and threads: every operation holds a lock.
    """

    __slots__ = ("_data", "_lock")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when missing."""
        with self._lock:
            return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        with self._lock:
            self._data[key] = value

    def remove(self, key: str) -> Any:
        """Delete ``key`` and return its value (``None`` if it was missing)."""
        with self._lock:
            return self._data.pop(key, None)

    def update(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Replace the value of ``key`` by ``fn(old)`` atomically; return the new value."""
        with self._lock:
            new = fn(self._data.get(key))
            self._data[key] = new
            return new

    def keys(self) -> list[str]:
        """The keys, in the order they were first set."""
        with self._lock:
            return list(self._data)


class PluginContext:
    """A plugin's view of its kernel: the agent id, its own config, shared state, events.

    Contexts made from one another with :meth:`with_config` share the same
    state and event stream, as the seed's ``Clone`` does.

    :attr:`settings` is the plugin's settings table: an instance of the
    plugin's ``settings_type`` (an attrs class) when it declares one, which the
    kernel fills before ``load``; otherwise ``config.settings`` as it is (a dict).
    """

    __slots__ = ("_event_sink", "_shared", "agent_id", "config", "plugin_id", "settings")

    def __init__(
        self,
        agent_id: str = "default",
        config: PluginConfig | None = None,
        *,
        plugin_id: str | None = None,
        shared_state: SharedState | None = None,
        event_sink: EventSink | None = None,
        settings: Any = None,
    ) -> None:
        self.agent_id = agent_id
        self.config = config if config is not None else PluginConfig()
        self.plugin_id = plugin_id
        #: The plugin's settings: its ``settings_type`` filled in, else the settings dict.
        self.settings: Any = settings if settings is not None else self.config.settings
        self._shared = shared_state if shared_state is not None else SharedState()
        self._event_sink = event_sink

    def __repr__(self) -> str:
        return f"PluginContext(agent_id={self.agent_id!r}, plugin_id={self.plugin_id!r})"

    @property
    def shared_state(self) -> SharedState:
        """The store behind :meth:`get_state` and :meth:`set_state`, shared by the kernel."""
        return self._shared

    def with_config(self, config: PluginConfig, *, plugin_id: str | None = None) -> PluginContext:
        """A context for one plugin, sharing this one's state and event stream."""
        return PluginContext(
            self.agent_id,
            config,
            plugin_id=plugin_id if plugin_id is not None else self.plugin_id,
            shared_state=self._shared,
            event_sink=self._event_sink,
        )

    def with_event_sender(self, sink: EventSink | None) -> PluginContext:
        """A copy whose :meth:`emit_event` sends to ``sink``."""
        return PluginContext(
            self.agent_id,
            self.config,
            plugin_id=self.plugin_id,
            shared_state=self._shared,
            event_sink=sink,
            settings=self.settings,
        )

    async def get_state(self, key: str, default: Any = None) -> Any:
        """The shared value under ``key``, or ``default`` (``None``) when missing."""
        return self._shared.get(key, default)

    async def set_state(self, key: str, value: Any) -> None:
        """Store ``value`` (any object) under ``key`` for every plugin of the kernel."""
        self._shared.set(key, value)

    async def remove_state(self, key: str) -> Any:
        """Delete ``key`` and return its value (``None`` if it was missing)."""
        return self._shared.remove(key)

    async def update_state(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Atomically replace the shared value of ``key`` by ``fn(old)``."""
        return self._shared.update(key, fn)

    async def emit_event(self, event: KernelEvent) -> None:
        """Send ``event`` into the kernel's event stream; does nothing without one."""
        if self._event_sink is not None:
            self._event_sink(event)
