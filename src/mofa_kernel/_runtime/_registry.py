"""The registry: one :class:`Entry` per plugin, and the indexes the runtime keeps over them.

An entry holds what the kernel knows about one plugin: the plugin object, the
metadata read once when the kernel first met it, its configuration and
deadline, where it came from, and its state. Only the lifecycle
(:mod:`._lifecycle`) writes ``state``; the registry stores and finds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from mofa_kernel._deadline import CallTable, Watchdog
from mofa_kernel._errors import PluginNotFoundError
from mofa_kernel._metadata import PluginConfig, PluginMetadata
from mofa_kernel._plugin import AgentPlugin
from mofa_kernel._records import PluginRecord
from mofa_kernel._types import PluginState

if TYPE_CHECKING:
    from mofa_kernel._context import PluginContext
    from mofa_kernel._source import PluginSource

__all__ = ["Entry", "EntryStatus", "Registry"]

#: ``registered``: usable; ``failed``: could not be imported or registered.
EntryStatus = Literal["registered", "failed"]


class Entry:
    """The kernel's bookkeeping for one plugin."""

    __slots__ = (
        "busy",
        "config",
        "ctx",
        "enabled",
        "error",
        "hooks_registered",
        "id",
        "idle_waiters",
        "initialized",
        "loaded",
        "metadata",
        "mirror_state",
        "pending_fault",
        "plugin",
        "reason",
        "source",
        "state",
        "status",
        "stopping",
        "table",
        "timeout",
        "waiting_for",
    )

    def __init__(
        self,
        plugin_id: str,
        plugin: AgentPlugin | None,
        metadata: PluginMetadata | None,
        config: PluginConfig,
        table: CallTable,
        source: PluginSource | None,
    ) -> None:
        self.id = plugin_id
        self.plugin = plugin
        #: Read once when the kernel met the plugin; later changes to the plugin's own
        #: ``metadata`` are not seen (a reload brings new metadata with a new instance).
        self.metadata = metadata
        self.config = config
        #: The in-flight executes and their deadline (``table.timeout``).
        self.table = table
        self.timeout = table.timeout
        self.source = source
        self.state: PluginState = PluginState.UNLOADED
        self.status: EntryStatus = "registered"
        self.enabled = True
        self.reason: str | None = None
        self.error: str | None = None
        self.ctx: PluginContext | None = None
        #: A lifecycle call of this plugin is running.
        self.busy = False
        #: A stop has begun: executes are refused.
        self.stopping = False
        self.initialized = False
        self.loaded = False
        #: Whether the kernel copies its state onto ``plugin.state`` (off after the
        #: plugin's own ``state`` property refused a value).
        self.mirror_state = True
        self.idle_waiters: list[asyncio.Future[None]] = []
        #: A fault noticed while a lifecycle call was still running (a blocked loop).
        self.pending_fault: str | None = None
        self.hooks_registered = False
        #: The dependency whose removal took this plugin down; it comes back with it.
        self.waiting_for: str | None = None

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.metadata.dependencies if self.metadata is not None else ()

    @property
    def priority(self) -> int:
        return int(self.metadata.priority) if self.metadata is not None else 0

    @property
    def wanted(self) -> bool:
        """Enabled by the host and by its configuration."""
        return self.enabled and self.config.enabled

    def record(self) -> PluginRecord:
        return PluginRecord(
            plugin_id=self.id,
            status=self.status,
            state=self.state,
            enabled=self.wanted,
            metadata=self.metadata,
            config=self.config,
            timeout=self.timeout,
            source=self.source,
            reason=self.reason,
            error=self.error,
        )


class Registry:
    """Every plugin the kernel knows, by id, and the orders the lifecycle keeps.

    ``serving`` holds the entries that accept executes right now (RUNNING and
    not stopping), so the execute path needs one lookup. ``up_order`` and
    ``load_order`` remember the order plugins reached RUNNING and LOADED:
    stop and unload run in exactly the reverse.
    """

    __slots__ = ("entries", "excluded", "load_order", "serving", "up_order", "watchdog")

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        self.entries: dict[str, Entry] = {}
        self.serving: dict[str, Entry] = {}
        #: Plugins found but not registered (disabled, or losers of a duplicate id).
        self.excluded: dict[str, PluginRecord] = {}
        self.up_order: dict[str, None] = {}
        self.load_order: dict[str, None] = {}

    def new_entry(
        self,
        plugin_id: str,
        plugin: AgentPlugin | None,
        metadata: PluginMetadata | None,
        config: PluginConfig,
        timeout: float | None,
        source: PluginSource | None,
    ) -> Entry:
        """An entry with its own call table (not yet added)."""
        table = self.watchdog.table(timeout, plugin_id)
        return Entry(plugin_id, plugin, metadata, config, table, source)

    def add(self, entry: Entry) -> None:
        self.entries[entry.id] = entry
        self.excluded.pop(entry.id, None)

    def exclude(self, record: PluginRecord) -> None:
        self.excluded[record.plugin_id] = record

    def forget(self, plugin_id: str) -> Entry | None:
        """Drop every trace of ``plugin_id``; return its entry, if it had one."""
        entry = self.entries.pop(plugin_id, None)
        self.excluded.pop(plugin_id, None)
        self.serving.pop(plugin_id, None)
        self.up_order.pop(plugin_id, None)
        self.load_order.pop(plugin_id, None)
        if entry is not None:
            self.watchdog.drop(entry.table)
        return entry

    def __contains__(self, plugin_id: object) -> bool:
        return plugin_id in self.entries

    def get(self, plugin_id: str) -> Entry:
        """The entry of ``plugin_id``; :class:`PluginNotFoundError` saying why there is none."""
        try:
            return self.entries[plugin_id]
        except KeyError:
            excluded = self.excluded.get(plugin_id)
            if excluded is not None:
                why = excluded.reason or excluded.error
                raise PluginNotFoundError(
                    f"plugin {plugin_id!r} is not loaded: {why}", plugin_id=plugin_id
                ) from None
            raise PluginNotFoundError(f"no plugin {plugin_id!r}", plugin_id=plugin_id) from None

    def record(self, plugin_id: str) -> PluginRecord:
        if plugin_id not in self.entries and plugin_id in self.excluded:
            return self.excluded[plugin_id]
        return self.get(plugin_id).record()

    def records(self) -> list[PluginRecord]:
        out = [entry.record() for entry in self.entries.values()]
        out.extend(r for pid, r in self.excluded.items() if pid not in self.entries)
        return out

    def graph(self) -> dict[str, tuple[str, ...]]:
        """Plugin id -> the ids it depends on, for every plugin with known metadata."""
        return {pid: e.dependencies for pid, e in self.entries.items() if e.metadata is not None}
