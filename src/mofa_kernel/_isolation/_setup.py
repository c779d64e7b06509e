"""From configuration to isolated plugins: specs, policies, and metadata read from a worker."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._exit import RestartPolicy
from ._proxy import IsolatedPlugin
from ._spawn import WorkerSpec

if TYPE_CHECKING:
    from mofa_kernel._config import KernelSettings
    from mofa_kernel._discovery import PluginSource
    from mofa_kernel._metadata import PluginMetadata

__all__ = ["isolated_plugin", "read_metadata", "restart_policy", "worker_spec"]


def worker_spec(source: PluginSource, settings: KernelSettings) -> WorkerSpec:
    """The worker of ``source``'s plugin under ``[plugins.ID]`` (its memory cap)."""
    section = settings.plugin_section(source.plugin_id)
    return WorkerSpec(
        source.plugin_id,
        source.entry_point,
        distribution=source.distribution,
        group=source.group,
        distribution_version=source.distribution_version,
        memory_limit=section.memory_limit,
    )


def restart_policy(plugin_id: str, settings: KernelSettings) -> RestartPolicy:
    """``max_restarts`` within ``restart_window`` from ``[plugins.ID]``."""
    section = settings.plugin_section(plugin_id)
    return RestartPolicy(section.max_restarts, section.restart_window)


def read_metadata(spec: WorkerSpec) -> PluginMetadata:
    """Start a worker only to learn who its plugin is, then end it (for commands that list).

    Raises :class:`~mofa_kernel.PluginLoadError` as :meth:`IsolatedPlugin.spawn` does.
    """

    async def ask() -> PluginMetadata:
        proxy = await IsolatedPlugin.spawn(spec)
        try:
            return proxy.metadata
        finally:
            await proxy.shut_down()

    return asyncio.run(ask())


def isolated_plugin(
    source: PluginSource, settings: KernelSettings, timeout: float | None
) -> IsolatedPlugin:
    """The plugin of ``source`` in a worker of its own, for discovery (no event loop needed)."""
    return IsolatedPlugin.prepare(worker_spec(source, settings), deadline=timeout)
