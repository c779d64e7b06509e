"""Bringing up a few plugins and what they depend on, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mofa_kernel import PluginManager

__all__ = ["start_plugins", "startup_order"]


def startup_order(manager: PluginManager, plugin_ids: Iterable[str]) -> list[str]:
    """``plugin_ids`` and everything they depend on, each after its dependencies.

    Raises :class:`~mofa_kernel.MissingDependencyError` or
    :class:`~mofa_kernel.DependencyCycleError` with the chain of ids.
    """
    from mofa_kernel import DependencyCycleError, MissingDependencyError

    graph = manager.dependency_graph()
    known = set(manager.plugin_ids())
    order: list[str] = []
    placed: set[str] = set()

    def visit(pid: str, chain: tuple[str, ...]) -> None:
        if pid in placed:
            return
        if pid in chain:
            cycle = (*chain[chain.index(pid) :], pid)
            raise DependencyCycleError(
                f"dependency cycle: {' -> '.join(cycle)}", plugin_id=pid, chain=cycle
            )
        if pid not in known:
            path = (*chain, pid)
            raise MissingDependencyError(
                f"missing dependency: {' -> '.join(path)} (not installed or not enabled)",
                plugin_id=chain[-1] if chain else pid,
                chain=path,
            )
        for dependency in sorted(graph.get(pid, ())):
            visit(dependency, (*chain, pid))
        placed.add(pid)
        order.append(pid)

    for pid in plugin_ids:
        visit(pid, ())
    return order


async def start_plugins(manager: PluginManager, plugin_ids: Iterable[str]) -> list[str]:
    """Bring ``plugin_ids`` and their dependencies to RUNNING, dependencies first.

    Plugins already running are left as they are; no other plugin is touched.
    Returns the ids in the order they were brought up. The first failure
    raises the :class:`~mofa_kernel.PluginError` that says why (a plugin that
    could not even be imported raises :class:`~mofa_kernel.PluginLoadError`
    with the reason discovery recorded).
    """
    from mofa_kernel import PluginLoadError, PluginState

    order = startup_order(manager, plugin_ids)
    for pid in order:
        state = manager.state(pid)
        if state.is_error:
            raise PluginLoadError(state.message or "failed", plugin_id=pid)
        if state == PluginState.UNLOADED:
            await manager.load(pid)
            state = manager.state(pid)
        if state == PluginState.LOADED:
            await manager.start(pid)
    return order
