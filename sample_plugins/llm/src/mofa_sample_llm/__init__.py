"""mofa-sample-llm: chat completions from an OpenAI-compatible endpoint, as a mofa-kernel plugin.

The entry point ``llm`` (group ``mofa.plugins``) names :class:`LLMPlugin`.
Only the standard library talks to the network (``urllib.request``, run in a
worker thread), so the plugin adds no dependency.
"""

from __future__ import annotations

from ._client import ChatClient, Completion, LLMError
from ._plugin import DEFAULT_BASE_URL, LLMPlugin, __version__

__all__ = ["DEFAULT_BASE_URL", "ChatClient", "Completion", "LLMError", "LLMPlugin", "__version__"]
