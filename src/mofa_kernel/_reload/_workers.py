"""New code of an isolated plugin: a fresh worker imports it, the host never does.

A reload of a plugin with ``isolation = "process"`` starts a second worker
beside the one serving, from the same :class:`~mofa_kernel._isolation.WorkerSpec`
(with the entry point an upgrade may have moved). That worker imports the
new code and answers with the plugin's metadata; from there the transaction
drives its proxy like any new instance (load, init, state, start, swap). A
worker that will not serve is ended with its whole process group.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeGuard

from mofa_kernel._adapters import is_isolated
from mofa_kernel._errors import PluginError

from ._steps import StepFailed

if TYPE_CHECKING:
    from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

__all__ = ["end_worker", "is_worker", "spawn"]


def is_worker(plugin: object) -> TypeGuard[IsolatedPlugin]:
    """:func:`~mofa_kernel._adapters.is_isolated`, telling the type checker what it found."""
    return is_isolated(plugin)


async def spawn(spec: WorkerSpec, plugin_id: str, deadline: float | None) -> IsolatedPlugin:
    """A proxy whose new worker has imported the new code; :class:`StepFailed` if it cannot.

    The import runs under the plugin's deadline: a worker whose import never
    ends is ended, which an import in the host could not be.
    """
    from mofa_kernel._isolation import IsolatedPlugin

    # asyncio.wait, not wait_for: before Python 3.12 wait_for may lose a cancellation.
    task = asyncio.ensure_future(IsolatedPlugin.spawn(spec, deadline=deadline))
    try:
        await asyncio.wait({task}, timeout=deadline)
    except BaseException:  # the reload is cancelled: no worker may be left behind
        await _abandon(task)
        raise
    if not task.done():
        await _abandon(task)
        raise StepFailed("import", f"import: timed out after {deadline:g}s", timeout=deadline)
    try:
        proxy = task.result()
    except (PluginError, OSError) as exc:
        raise StepFailed("import", f"import: {_without_prefix(str(exc), spec)}") from None
    if proxy.metadata.id != plugin_id:
        found = proxy.metadata.id
        await proxy.shut_down()
        raise StepFailed(
            "construct",
            f"construct: the new code describes plugin {found!r}, not {plugin_id!r}",
        )
    return proxy


async def _abandon(task: asyncio.Task[IsolatedPlugin]) -> None:
    """Cancel a worker's start (its worker is then ended); end it, if it started meanwhile."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is None:
        await task.result().shut_down()


def _without_prefix(message: str, spec: WorkerSpec) -> str:
    """The worker's own words, without the "worker of plugin 'x': " the host put first."""
    prefix = f"worker of plugin {spec.plugin_id!r}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


async def end_worker(plugin: object) -> None:
    """End ``plugin``'s worker and process group, if it is an isolated plugin's proxy."""
    if is_worker(plugin):
        await plugin.shut_down()
