"""greeter: a mofa-kernel plugin (Tool).

The distribution declares :class:`GreeterPlugin` as the entry point ``greeter``
of the group ``mofa.plugins``, so every mofa-kernel host finds the plugin once
the distribution is installed.
"""

from __future__ import annotations

from typing import Any

import attrs
from mofa_kernel import (
    AgentPlugin,
    HotReloadable,
    PluginExecutionError,
    PluginMetadata,
    PluginType,
)

__all__ = ["GreeterPlugin", "GreeterSettings"]

__version__ = "0.1.0"


@attrs.frozen
class GreeterSettings:
    """The ``[plugins.greeter.settings]`` table of ``mofa.toml``: each key, its type, its default.

    The kernel fills it in before ``load``: an unknown key or a value of the
    wrong type fails the plugin with a message naming the key.
    """

    #: The word to greet with.
    greeting: str = "Hello"


class GreeterPlugin(AgentPlugin, HotReloadable):
    """Greets whoever its input names: replace ``execute`` with the plugin's own work.

    Settings: :class:`GreeterSettings`.
    """

    metadata = PluginMetadata(
        id="greeter",
        name="Greeter",
        plugin_type=PluginType.TOOL,
        version=__version__,
        description="A mofa-kernel plugin (Tool).",
    )
    settings_type = GreeterSettings

    def __init__(self) -> None:
        self.settings = GreeterSettings()
        self.answered = 0

    async def init_plugin(self) -> None:
        # The kernel called load(ctx) first, which keeps ctx as self.context.
        if self.context is not None:
            self.settings = self.context.settings

    async def execute(self, input: str) -> str:
        who = input.strip()
        if not who:
            # A rejected input: the caller gets the error, the plugin keeps running.
            raise PluginExecutionError("the input is empty: name someone to greet")
        self.answered += 1
        return f"{self.settings.greeting}, {who}!"

    def stats(self) -> dict[str, Any]:
        return {"answered": self.answered}

    # Hot reload: the count is carried from the old instance to the new one.

    async def save_state(self) -> object:
        return {"answered": self.answered}

    async def restore_state(self, state: object) -> None:
        if isinstance(state, dict) and isinstance(state.get("answered"), int):
            self.answered = state["answered"]
