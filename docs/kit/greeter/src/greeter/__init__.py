"""greeter: a mofa-kernel plugin (Tool).

The distribution declares :class:`GreeterPlugin` as the entry point ``greeter``
of the group ``mofa.plugins``, so every mofa-kernel host finds the plugin once
the distribution is installed.
"""

from __future__ import annotations

from typing import Any

from mofa_kernel import (
    AgentPlugin,
    HotReloadable,
    PluginExecutionError,
    PluginMetadata,
    PluginType,
)

__all__ = ["GreeterPlugin"]

__version__ = "0.1.0"


class GreeterPlugin(AgentPlugin, HotReloadable):
    """Greets whoever its input names: replace ``execute`` with the plugin's own work.

    Settings (``[plugins.greeter.settings]`` in ``mofa.toml``): ``greeting``,
    the word to greet with (default ``"Hello"``).
    """

    metadata = PluginMetadata(
        id="greeter",
        name="Greeter",
        plugin_type=PluginType.TOOL,
        version=__version__,
        description="A mofa-kernel plugin (Tool).",
    )

    def __init__(self) -> None:
        self.greeting = "Hello"
        self.answered = 0

    async def init_plugin(self) -> None:
        # The kernel called load(ctx) first, which keeps ctx as self.context.
        if self.context is not None:
            self.greeting = self.context.config.get_string("greeting") or "Hello"

    async def execute(self, input: str) -> str:
        who = input.strip()
        if not who:
            # A rejected input: the caller gets the error, the plugin keeps running.
            raise PluginExecutionError("the input is empty: name someone to greet")
        self.answered += 1
        return f"{self.greeting}, {who}!"

    def stats(self) -> dict[str, Any]:
        return {"answered": self.answered}

    # Hot reload: the count is carried from the old instance to the new one.

    async def save_state(self) -> object:
        return {"answered": self.answered}

    async def restore_state(self, state: object) -> None:
        if isinstance(state, dict) and isinstance(state.get("answered"), int):
            self.answered = state["answered"]
