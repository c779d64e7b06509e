"""Intake: how plugins enter the registry, registered in-process or discovered.

Both ways read a plugin's metadata exactly once (see :func:`~mofa_kernel._adapters.adapt`),
check its hooks against the specifications, and add one entry. Discovery
honours the configuration and the environment, never imports an excluded
plugin, and records what failed instead of raising.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from mofa_kernel._adapters import adapt
from mofa_kernel._errors import DiscoveryError, PluginError
from mofa_kernel._ids import check_plugin_id
from mofa_kernel._metadata import PluginConfig, PluginMetadata
from mofa_kernel._plugin import AgentPlugin
from mofa_kernel._records import DiscoveryReport, PluginRecord
from mofa_kernel._types import PluginState

from ._lifecycle import Lifecycle
from ._observers import Observers
from ._registry import Registry

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mofa_kernel._config import KernelSettings
    from mofa_kernel._source import PluginSource

__all__ = ["Intake"]

_logger = logging.getLogger("mofa_kernel")


class Intake:
    """Adds plugins to the registry; see the module docstring."""

    def __init__(self, registry: Registry, lifecycle: Lifecycle, observers: Observers) -> None:
        self._registry = registry
        self._lifecycle = lifecycle
        self._observers = observers

    def register(
        self,
        plugin: object,
        *,
        config: PluginConfig | None,
        timeout: float | None,
    ) -> str:
        """Add an in-process plugin object; return its id."""
        try:
            label = repr(getattr(plugin, "__name__", type(plugin).__name__))
        except Exception:  # noqa: BLE001 - a hostile __getattr__ leaves the type's name
            label = repr(type(plugin).__name__)
        agent, metadata = adapt(plugin, label=label)
        return self._add(agent, metadata, plugin, config=config, timeout=timeout, source=None)

    def _add(
        self,
        agent: AgentPlugin,
        metadata: PluginMetadata,
        hooks_object: object,
        *,
        config: PluginConfig | None,
        timeout: float | None,
        source: PluginSource | None,
    ) -> str:
        pid = metadata.id
        check_plugin_id(pid)  # the same rule as discovery's: no empty, spaced or hidden ids
        if pid in self._registry:
            raise DiscoveryError(f"plugin id {pid!r} is already registered", plugin_id=pid)
        entry = self._registry.new_entry(
            pid, agent, metadata, config if config is not None else PluginConfig(), timeout, source
        )
        self._observers.register(entry, hooks_object)
        self._registry.add(entry)
        self._lifecycle.mirror(entry)
        return pid

    def discover(
        self,
        settings: KernelSettings,
        default_timeout: float | None,
        only: Iterable[str] | None = None,
    ) -> DiscoveryReport:
        """Find the plugins of group ``mofa.plugins`` and register the enabled ones (of
        ``only``, when given)."""
        from mofa_kernel._cache import MetadataNotes
        from mofa_kernel._config import plugin_rule
        from mofa_kernel._discovery import load_plugin_object, survey

        found = survey(plugin_rule(settings, os.environ))
        wanted = None if only is None else set(only)
        notes = MetadataNotes.before(found.loadable())  # for `plugins list`, without importing
        for unreadable in found.problems:
            _logger.warning("%s", unreadable)
        # -- plugin settings (issue 14): a [plugins.ID] table naming no plugin is a warning
        from mofa_kernel._settings import unknown_plugin_tables

        ids = {entry.plugin_id for entry in found.entries} | set(self._registry.entries)
        for line in unknown_plugin_tables(settings.plugins, ids):
            _logger.warning("%s", line)
        records: list[PluginRecord] = []
        registry = self._registry
        for entry in found.entries:
            source = entry.source
            pid = source.plugin_id
            if wanted is not None and pid not in wanted:
                continue
            section = settings.plugins.get(pid)
            config = section.to_plugin_config() if section is not None else PluginConfig()
            timeout = section.timeout if section is not None and section.timeout else None
            timeout = timeout if timeout is not None else default_timeout
            known = registry.entries.get(pid)
            if known is not None and known.source == source:
                records.append(known.record())  # found by an earlier discover()
                continue
            if entry.status == "disabled":
                record = PluginRecord(
                    plugin_id=pid,
                    status="disabled",
                    state=PluginState.UNLOADED,
                    enabled=False,
                    config=config,
                    source=source,
                    reason=entry.reason,
                )
                registry.exclude(record)
                records.append(record)
                continue
            problem: str | None = None
            if entry.status == "failed":
                problem = entry.reason or "refused"
            elif known is not None:
                problem = f"plugin id {pid!r} is already registered in-process"
            if problem is None:
                try:
                    obj: object
                    if settings.plugin_isolation(pid) == "process":
                        from mofa_kernel._isolation._setup import isolated_plugin

                        obj = isolated_plugin(source, settings, timeout)  # never imported here
                    else:
                        obj = load_plugin_object(source)
                    agent, metadata = adapt(obj, label=f"{pid!r} ({source.entry_point})")
                    if metadata.id != pid:
                        raise DiscoveryError(
                            f"entry point {pid!r} names a plugin whose metadata id is "
                            f"{metadata.id!r}; they must match",
                            plugin_id=pid,
                        )
                    self._add(agent, metadata, obj, config=config, timeout=timeout, source=source)
                    notes.learned(source, metadata)
                except PluginError as exc:
                    problem = str(exc)
            if problem is not None:
                self._add_failed(pid, problem, config, timeout, source)
            records.append(registry.record(pid))
        notes.save()
        return DiscoveryReport(records=tuple(records), problems=found.problems)

    def _add_failed(
        self,
        pid: str,
        problem: str,
        config: PluginConfig,
        timeout: float | None,
        source: PluginSource,
    ) -> None:
        registry = self._registry
        known = registry.entries.get(pid)
        if known is not None and known.plugin is not None:
            # The id is taken by a working plugin; keep it and record the loser aside.
            registry.exclude(
                PluginRecord(
                    plugin_id=pid,
                    status="failed",
                    state=PluginState.error(problem),
                    enabled=False,
                    config=config,
                    source=source,
                    error=problem,
                )
            )
            return
        entry = registry.new_entry(pid, None, None, config, timeout, source)
        entry.status = "failed"
        entry.error = problem
        self._lifecycle.set_initial(entry, PluginState.error(problem))
        registry.add(entry)
