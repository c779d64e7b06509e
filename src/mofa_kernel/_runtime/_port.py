"""The port hot reload uses to change the runtime's bookkeeping.

Hot reload (:mod:`mofa_kernel._reload`) drives plugins through the manager's
public verbs; what it needs beyond them (a context for a new instance, the
swap of instances, a first instance for a plugin that could not be imported,
forgetting an uninstalled plugin, the worker an isolated plugin's new code
runs in) is here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mofa_kernel._adapters import adapt, is_isolated
from mofa_kernel._context import PluginContext
from mofa_kernel._errors import InvalidStateError, PluginError, PluginLoadError
from mofa_kernel._metadata import PluginMetadata
from mofa_kernel._plugin import AgentPlugin
from mofa_kernel._types import PluginState

from ._calls import PluginCaller
from ._lifecycle import Lifecycle
from ._observers import Observers
from ._registry import Registry
from ._scheduler import Scheduler

if TYPE_CHECKING:
    from mofa_kernel._config import KernelSettings
    from mofa_kernel._isolation import WorkerSpec
    from mofa_kernel._source import PluginSource

__all__ = ["ReloadPort", "trust_refusal"]


def trust_refusal(settings: KernelSettings, source: PluginSource) -> str | None:
    """Why new code from ``source`` must not be imported under the trust lock, or None.

    The lock file is read again, so an approval given meanwhile counts.
    """
    if settings.kernel.trust == "off":
        return None
    from mofa_kernel._trust import TrustLock, exclusion_rule

    try:
        lock = TrustLock.read(settings.trust_lock_path())
    except PluginError as exc:
        return str(exc)
    return exclusion_rule(lock, "refuse" if settings.kernel.trust == "refuse" else "warn")(source)


class ReloadPort:
    """What hot reload may do to the runtime besides the manager's public verbs."""

    def __init__(
        self,
        registry: Registry,
        caller: PluginCaller,
        lifecycle: Lifecycle,
        scheduler: Scheduler,
        observers: Observers,
        make_context: Callable[[str], PluginContext],
        settings: Callable[[], KernelSettings],
        supervise: Callable[[str], None],
    ) -> None:
        self._registry = registry
        self._caller = caller
        self._lifecycle = lifecycle
        self._scheduler = scheduler
        self._observers = observers
        self._make_context = make_context
        self._settings = settings
        self._supervise = supervise

    def context(self, plugin_id: str) -> PluginContext:
        """A context for a new instance of ``plugin_id``: its config, shared state and events."""
        self._registry.get(plugin_id)
        return self._make_context(plugin_id)

    def initialized(self, plugin_id: str) -> bool:
        return self._registry.get(plugin_id).initialized

    def calls(self, plugin_id: str) -> tuple[object, ...]:
        """The executes of ``plugin_id`` in flight now (their coroutines)."""
        return tuple(self._registry.get(plugin_id).table.calls)

    async def trial(
        self, step: str, call: Callable[[], Any], timeout: float | None, *, returns: bool = False
    ) -> Any:
        """Run plugin code of an instance not yet in service (see :meth:`PluginCaller.trial`)."""
        return await self._caller.trial(step, call, timeout, returns=returns)

    def replace(self, plugin_id: str, plugin: object) -> AgentPlugin:
        """Swap in a new object for ``plugin_id``; return the old one.

        The new object must describe the same id. Its ``state`` is set to the
        plugin's; calls already in flight finish on the old object, and every
        call after this returns goes to the new one. Hook registrations (such
        as ``on_plugin_event``) move to the new object.
        """
        entry = self._registry.get(plugin_id)
        old = entry.plugin
        if old is None:
            raise InvalidStateError(
                f"plugin {plugin_id!r} has no instance to replace", plugin_id=plugin_id
            )
        agent, metadata = self._checked(plugin_id, plugin)
        self._observers.move(entry, agent, plugin)
        entry.plugin = agent
        entry.metadata = metadata
        entry.mirror_state = True
        self._lifecycle.mirror(entry)
        self._supervise(plugin_id)  # a new worker is restarted by the policy, the old one no more
        return old

    def swap(
        self, plugin_id: str, agent: AgentPlugin, expected: PluginState, ctx: PluginContext | None
    ) -> AgentPlugin:
        """Put ``agent`` in place of the current instance, if the plugin is still ``expected``
        and no lifecycle call runs; return the previous instance."""
        entry = self._registry.get(plugin_id)
        if entry.busy or entry.state != expected or entry.stopping:
            raise InvalidStateError(
                f"plugin {plugin_id!r} changed state during the reload (now {entry.state})",
                plugin_id=plugin_id,
                hook="reload",
                expected=(expected,),
                actual=entry.state,
            )
        old = self.replace(plugin_id, agent)
        if ctx is not None:
            entry.ctx = ctx
        return old

    def fill(self, plugin_id: str, agent: AgentPlugin) -> None:
        """Give a plugin whose code could not be imported its first instance (UNLOADED)."""
        entry = self._registry.get(plugin_id)
        if entry.plugin is not None:
            raise InvalidStateError(f"plugin {plugin_id!r} already has an instance")
        agent, metadata = self._checked(plugin_id, agent)
        entry.plugin = agent
        entry.metadata = metadata
        entry.status = "registered"
        entry.error = None
        self._observers.move(entry, agent, agent)
        self._lifecycle.set_state(entry, PluginState.UNLOADED)
        self._supervise(plugin_id)

    def _checked(self, plugin_id: str, plugin: object) -> tuple[AgentPlugin, PluginMetadata]:
        agent, metadata = adapt(plugin, label=repr(plugin_id))
        if metadata.id != plugin_id:
            raise PluginLoadError(
                f"the new code of {plugin_id!r} describes a plugin {metadata.id!r}",
                plugin_id=plugin_id,
            )
        return agent, metadata

    def fail(self, plugin_id: str, message: str) -> None:
        """Put ``plugin_id`` in the error state because a reload failed (no rollback wanted)."""
        self._lifecycle.fail(self._registry.get(plugin_id), "reload", None, message)

    def trust_refusal(self, plugin_id: str) -> str | None:
        """Why new code of ``plugin_id`` must not be imported under the trust lock, or None."""
        source = self._registry.get(plugin_id).source
        return None if source is None else trust_refusal(self._settings(), source)

    def worker_spec(self, plugin_id: str) -> WorkerSpec | None:
        """The worker that new code of ``plugin_id`` runs in, or None for an inline plugin.

        An isolated plugin's code is never imported in the host: a reload starts
        a worker from this spec. It is the serving worker's, with the entry point
        of the plugin's source now (an upgrade may have moved it) and the trust
        lock's verdicts as they are now: ask after the reload's trust check, which
        judges the new code, or the new worker refuses what was just approved.
        """
        entry = self._registry.get(plugin_id)
        plugin, source = entry.plugin, entry.source
        if is_isolated(plugin):
            import attrs

            from mofa_kernel._trust_guard import GUARD

            spec: WorkerSpec = plugin.spec  # type: ignore[union-attr]
            spec = attrs.evolve(spec, trust=tuple(GUARD.snapshot()))
            if source is None:
                return spec
            return attrs.evolve(
                spec,
                entry_point=source.entry_point,
                distribution=source.distribution,
                distribution_version=source.distribution_version,
                group=source.group,
            )
        settings = self._settings()
        if plugin is None and source is not None:
            if settings.plugin_isolation(plugin_id) != "process":
                return None
            from mofa_kernel._isolation._setup import worker_spec

            return worker_spec(source, settings)  # it failed in its worker at discovery
        return None

    def set_source(self, plugin_id: str, source: PluginSource) -> None:
        """Record that ``plugin_id`` now comes from ``source`` (an upgraded distribution)."""
        self._registry.get(plugin_id).source = source

    async def take_down_dependents(self, plugin_id: str, why: str) -> list[str]:
        """Stop the running plugins that need ``plugin_id`` (it ``why``), reporting each."""
        return await self._scheduler.take_down_for(plugin_id, why)

    def forget(self, plugin_id: str) -> None:
        """Drop every trace of ``plugin_id`` (its distribution was uninstalled)."""
        entry = self._registry.forget(plugin_id)
        if entry is not None:
            self._observers.unregister(entry)

    async def bring_back(self, plugin_ids: list[str]) -> None:
        """Start again the plugins that were taken down because one of ``plugin_ids`` left."""
        waiting = self._scheduler.waiting_for(plugin_ids)
        if waiting:
            try:
                await self._scheduler.bring_up(waiting)
            except PluginError:
                return  # each failure is on its plugin's record and on the event stream
