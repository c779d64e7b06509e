"""The pluggy hook specifications: the plugin lifecycle, one hook per step.

A module-style plugin is any object (usually a module) whose functions are
marked with :data:`hookimpl` and named after these hooks. Functions may be
plain or ``async``. Unimplemented lifecycle hooks behave like the
:class:`~mofa_kernel.AgentPlugin` defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._context import PluginContext
    from ._events import KernelEvent
    from ._metadata import PluginMetadata

__all__ = ["PROJECT_NAME", "LifecycleHooks", "hookimpl", "hookspec"]

#: The pluggy project name of mofa-kernel's hooks.
PROJECT_NAME = "mofa"

#: Marks a hook specification of the ``mofa`` project.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's implementation of a ``mofa`` hook.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class LifecycleHooks:
    """The hooks a plugin may implement. Each runs for its own plugin only,
    except :meth:`on_plugin_event`, which every implementing plugin receives."""

    @hookspec(firstresult=True)
    def plugin_metadata(self) -> PluginMetadata:  # type: ignore[empty-body]
        """Return the plugin's :class:`~mofa_kernel.PluginMetadata`. Required.

        Called once, when the plugin is registered; a plain function, never ``async``.
        """

    @hookspec(firstresult=True)
    def load(self, ctx: PluginContext) -> None:
        """Acquire resources; ``ctx`` is the plugin's :class:`~mofa_kernel.PluginContext`.

        Called on Unloaded -> Loaded. Keep ``ctx``: it holds the plugin's
        configuration, the shared state and the way to emit events.
        """

    @hookspec(firstresult=True)
    def init_plugin(self) -> None:
        """Apply configuration (``ctx.config``) after loading; the plugin stays Loaded."""

    @hookspec(firstresult=True)
    def start(self) -> None:
        """Begin serving: called on Loaded -> Running, once every dependency is running."""

    @hookspec(firstresult=True)
    def pause(self) -> None:
        """Stop serving for a while, keeping resources: Running -> Paused."""

    @hookspec(firstresult=True)
    def resume(self) -> None:
        """Serve again after a pause: Paused -> Running."""

    @hookspec(firstresult=True)
    def stop(self) -> None:
        """Stop serving: Running or Paused -> Loaded, in reverse start order."""

    @hookspec(firstresult=True)
    def unload(self) -> None:
        """Release what ``load`` acquired: Loaded (or Error) -> Unloaded."""

    @hookspec(firstresult=True)
    def execute(self, input: str) -> str:  # type: ignore[empty-body]
        """Do the plugin's work on ``input`` and return the answer (a ``str``). Required.

        To reject one input, raise :class:`~mofa_kernel.PluginExecutionError`:
        the plugin stays running. Any other exception puts it in the error state.
        """

    @hookspec(firstresult=True)
    def health_check(self) -> bool:  # type: ignore[empty-body]
        """Return whether the plugin is healthy; by default, whether it is running."""

    @hookspec(firstresult=True)
    def stats(self) -> dict[str, Any]:  # type: ignore[empty-body]
        """Return JSON-able figures about the plugin (plain function, not ``async``)."""

    @hookspec(firstresult=True)
    def save_state(self) -> object:
        """Return the state to carry across a hot reload, as JSON-able data."""

    @hookspec(firstresult=True)
    def restore_state(self, state: object) -> None:
        """Take over ``state`` saved by the previous version before a hot reload."""

    @hookspec(firstresult=True)
    def refresh(self) -> None:
        """Re-read cached resources when a reload finds the code unchanged."""

    @hookspec
    def on_plugin_event(self, event: KernelEvent) -> None:
        """Observe every event of every plugin (:class:`~mofa_kernel.PluginEvent` and
        :class:`~mofa_kernel.ReloadEvent`)."""
