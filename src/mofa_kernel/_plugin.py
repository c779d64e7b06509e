"""The class-style plugin contract: :class:`AgentPlugin` and :class:`HotReloadable`."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from ._types import PluginState

if TYPE_CHECKING:
    from ._context import PluginContext
    from ._metadata import PluginMetadata
    from ._types import PluginType

__all__ = ["AgentPlugin", "HotReloadable"]


class AgentPlugin(abc.ABC):
    """Base class of class-style plugins.

    A subclass provides ``metadata`` (a class attribute, a property, or an
    attribute set in ``__init__``) and ``execute``; every other lifecycle step
    has a default that does nothing.
    The manager owns ``state`` and sets it around each call, so a plugin never
    has to. ``__init__`` takes no required arguments.
    """

    #: Set by the manager; a plugin reads it, never needs to write it.
    state: PluginState = PluginState.UNLOADED
    #: The context given to :meth:`load` (set by the default ``load``).
    context: PluginContext | None = None
    #: An attrs class describing the plugin's settings (``[plugins.ID.settings]``), or
    #: ``None``. The kernel structures the settings into it before :meth:`load`, and the
    #: plugin reads the result as ``ctx.settings``; an unknown key or a wrong type fails
    #: the load with one line per problem.
    settings_type: ClassVar[type[Any] | None] = None

    if TYPE_CHECKING:
        # Declared for type checkers only, so that at run time a subclass may provide
        # it in any form; the manager checks that it is there when registering.
        @property
        def metadata(self) -> PluginMetadata:
            """Who this plugin is."""

    @property
    def plugin_id(self) -> str:
        return self.metadata.id

    @property
    def plugin_type(self) -> PluginType:
        return self.metadata.plugin_type

    async def load(self, ctx: PluginContext) -> None:
        """Acquire resources. The default keeps ``ctx`` as :attr:`context`."""
        self.context = ctx

    async def init_plugin(self) -> None:
        """Apply configuration (``self.context.config``)."""

    async def start(self) -> None:
        """Begin serving."""

    async def pause(self) -> None:
        """Stop serving for a while, keeping resources."""

    async def resume(self) -> None:
        """Serve again after :meth:`pause`."""

    async def stop(self) -> None:
        """Stop serving."""

    async def unload(self) -> None:
        """Release resources."""

    @abc.abstractmethod
    async def execute(self, input: str) -> str:
        """Do the plugin's work on ``input`` and return the answer."""

    async def health_check(self) -> bool:
        """Healthy means running, unless a plugin knows better."""
        return self.state == PluginState.RUNNING

    def stats(self) -> dict[str, Any]:
        """JSON-able figures about this plugin; empty by default."""
        return {}


class HotReloadable:
    """Mixin for plugins that carry state across a hot reload.

    ``save_state`` runs on the old instance and returns plain data (JSON-able:
    no object of the old code's classes may cross); ``restore_state`` runs on
    the new instance after its ``load`` and ``init_plugin`` and before its
    ``start``. ``refresh`` is asked for when a reload is requested while the
    plugin's code is unchanged, so it can re-read whatever it caches.
    """

    async def refresh(self) -> None:
        """Re-read cached resources without new code."""

    async def save_state(self) -> object:
        """Return this instance's state as JSON-able data."""
        return None

    async def restore_state(self, state: object) -> None:
        """Take over ``state`` as returned by the old instance's :meth:`save_state`."""
