"""Plugins' hook registrations with pluggy, and the ``on_plugin_event`` observers they give."""

from __future__ import annotations

import pluggy

from mofa_kernel._adapters import HookPlugin, has_hooks
from mofa_kernel._errors import PluginLoadError
from mofa_kernel._event_bus import EventBus
from mofa_kernel._hookspecs import PROJECT_NAME, LifecycleHooks
from mofa_kernel._plugin import AgentPlugin

from ._registry import Entry

__all__ = ["Observers"]


class Observers:
    """Registers each plugin's ``@hookimpl`` functions with pluggy (which checks them
    against the hook specifications) and keeps the event bus's observers in step."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._pluggy = pluggy.PluginManager(PROJECT_NAME)
        self._pluggy.add_hookspecs(LifecycleHooks)

    def register(self, entry: Entry, hooks_object: object) -> None:
        """Register ``hooks_object``'s hooks under ``entry``'s id, if it has any."""
        if not has_hooks(hooks_object):
            return
        try:
            self._pluggy.register(hooks_object, name=entry.id)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginLoadError(f"plugin {entry.id!r}: {exc}", plugin_id=entry.id) from exc
        entry.hooks_registered = True
        self._refresh()

    def unregister(self, entry: Entry) -> None:
        if entry.hooks_registered:
            self._pluggy.unregister(name=entry.id)
            entry.hooks_registered = False
            self._refresh()

    def move(self, entry: Entry, agent: AgentPlugin, given: object) -> None:
        """``entry``'s hooks now come from ``agent`` (``given`` is what the caller handed in)."""
        hooks_object = given.hooks if isinstance(given, HookPlugin) else given
        self.unregister(entry)
        self.register(entry, hooks_object)
        if isinstance(agent, HookPlugin) and not entry.hooks_registered:
            self.register(entry, agent.hooks)
        self._refresh()

    def _refresh(self) -> None:
        impls = self._pluggy.hook.on_plugin_event.get_hookimpls()
        self._bus.set_observers([(impl.plugin_name, impl.function) for impl in impls])
