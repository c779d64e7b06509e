"""mofa-sample-hello: the smallest useful mofa-kernel plugin.

``mofa-kernel run hello world`` prints ``Hello, world!``. The greeting comes
from the configuration (``[plugins.hello.settings] greeting = "Bonjour"``).
"""

from __future__ import annotations

import attrs

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

__all__ = ["HelloPlugin", "HelloSettings"]


@attrs.frozen
class HelloSettings:
    """The ``[plugins.hello.settings]`` table."""

    #: The word to greet with.
    greeting: str = "Hello"


class HelloPlugin(AgentPlugin):
    """Greets whoever its input names."""

    metadata = PluginMetadata(
        "hello",
        "Hello",
        PluginType.TOOL,
        version="0.1.0",
        description="Greets whoever its input names.",
        capabilities=("greeting",),
    )
    settings_type = HelloSettings

    def __init__(self) -> None:
        self.greeting = "Hello"
        self.greeted = 0

    async def init_plugin(self) -> None:
        if self.context is not None:
            self.greeting = self.context.settings.greeting or "Hello"

    async def execute(self, input: str) -> str:
        self.greeted += 1
        return f"{self.greeting}, {input.strip() or 'world'}!"

    def stats(self) -> dict[str, int]:
        return {"greeted": self.greeted}
