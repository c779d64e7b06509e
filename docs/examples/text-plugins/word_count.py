"""A class-style plugin: counts the words of its input."""

from __future__ import annotations

from typing import Any

from mofa_kernel import AgentPlugin, PluginExecutionError, PluginMetadata, PluginType


class WordCountPlugin(AgentPlugin):
    """Answers with the number of words in the input, optionally ignoring short ones."""

    metadata = (
        PluginMetadata("word-count", "Word count", PluginType.TOOL)
        .with_version("0.1.0")
        .with_description("Counts the words of a text.")
        .with_capability("text")
    )

    def __init__(self) -> None:
        self.min_length = 1
        self.texts = 0

    async def init_plugin(self) -> None:
        assert self.context is not None  # the default load() keeps the context
        self.min_length = self.context.config.get_int("min_length", default=1)

    async def execute(self, input: str) -> str:
        if not input.strip():
            raise PluginExecutionError("word-count: the input is empty")
        self.texts += 1
        words = [word for word in input.split() if len(word) >= self.min_length]
        return str(len(words))

    def stats(self) -> dict[str, Any]:
        return {"texts": self.texts}
