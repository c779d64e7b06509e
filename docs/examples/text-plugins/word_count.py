"""A class-style plugin: counts the words of its input."""

from __future__ import annotations

from typing import Any

import attrs

from mofa_kernel import AgentPlugin, PluginExecutionError, PluginMetadata, PluginType


@attrs.frozen
class WordCountSettings:
    """The ``[plugins.word-count.settings]`` table: each key, its type and default."""

    #: Words shorter than this are not counted.
    min_length: int = 1


class WordCountPlugin(AgentPlugin):
    """Answers with the number of words in the input, optionally ignoring short ones."""

    metadata = (
        PluginMetadata("word-count", "Word count", PluginType.TOOL)
        .with_version("0.1.0")
        .with_description("Counts the words of a text.")
        .with_capability("text")
    )
    settings_type = WordCountSettings

    def __init__(self) -> None:
        self.settings = WordCountSettings()
        self.texts = 0

    async def init_plugin(self) -> None:
        assert self.context is not None  # the default load() keeps the context
        self.settings = self.context.settings  # a WordCountSettings, checked by the kernel

    async def execute(self, input: str) -> str:
        if not input.strip():
            raise PluginExecutionError("word-count: the input is empty")
        self.texts += 1
        words = [word for word in input.split() if len(word) >= self.settings.min_length]
        return str(len(words))

    def stats(self) -> dict[str, Any]:
        return {"texts": self.texts}
