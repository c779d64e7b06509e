"""The LLM plugin: a prompt in, the model's answer out."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any, Final

from mofa_kernel import (
    AgentPlugin,
    PluginConfigError,
    PluginContext,
    PluginExecutionError,
    PluginMetadata,
    PluginType,
)

from ._client import ChatClient, LLMError

__all__ = ["DEFAULT_BASE_URL", "LLMPlugin", "__version__"]

__version__ = "0.1.0"

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"

#: Setting -> environment variables consulted in turn when the setting is absent.
_ENVIRONMENT: Final[Mapping[str, tuple[str, ...]]] = {
    "base_url": ("MOFA_LLM_BASE_URL", "OPENAI_BASE_URL"),
    "model": ("MOFA_LLM_MODEL",),
    "api_key": ("MOFA_LLM_API_KEY", "OPENAI_API_KEY"),
}


class LLMPlugin(AgentPlugin):
    """Sends prompts to an OpenAI-compatible chat completions endpoint.

    ``execute`` takes plain text (sent as one user message) or a JSON object
    ``{"messages": [...], "temperature": 0.2, ...}`` whose other keys are
    passed to the endpoint as they are. It returns the assistant's answer.

    Settings, each falling back to the environment: ``base_url``
    (``MOFA_LLM_BASE_URL``, ``OPENAI_BASE_URL``, else the OpenAI API),
    ``model`` (``MOFA_LLM_MODEL``), ``api_key`` (``MOFA_LLM_API_KEY``,
    ``OPENAI_API_KEY``); also ``timeout`` in seconds (default 20) and
    ``system_prompt``.
    """

    metadata = PluginMetadata(
        id="llm",
        name="LLM",
        plugin_type=PluginType.LLM,
        version=__version__,
        description="Chat completions from an OpenAI-compatible endpoint.",
        capabilities=("chat",),
    )

    ctx: PluginContext  # set by load()
    client: ChatClient  # set by init_plugin()

    def __init__(self) -> None:
        self.model: str | None = None
        self.system_prompt: str | None = None
        self.requests = 0
        self.failures = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    async def load(self, ctx: PluginContext) -> None:
        await super().load(ctx)
        self.ctx = ctx

    async def init_plugin(self) -> None:
        config = self.ctx.config
        timeout = config.get_float("timeout")
        if timeout is None:
            timeout = 20.0
        elif timeout <= 0:
            raise PluginConfigError(f"settings.timeout: expected a positive number, got {timeout}")
        base_url = self._setting("base_url") or DEFAULT_BASE_URL
        try:
            self.client = ChatClient(base_url, api_key=self._setting("api_key"), timeout=timeout)
        except ValueError as exc:
            raise PluginConfigError(f"settings.base_url: {exc}") from None
        self.model = self._setting("model")
        self.system_prompt = config.get_string("system_prompt")

    def _setting(self, key: str) -> str | None:
        value = self.ctx.config.get_string(key)
        if value:
            return value
        return next((os.environ[v] for v in _ENVIRONMENT[key] if os.environ.get(v)), None)

    async def execute(self, input: str) -> str:
        try:
            body = self._request_body(input)
        except ValueError as exc:
            raise PluginExecutionError(str(exc), plugin_id=self.plugin_id) from None
        self.requests += 1
        try:
            completion = await asyncio.to_thread(self.client.complete, body)
        except LLMError as exc:
            self.failures += 1
            raise PluginExecutionError(str(exc), plugin_id=self.plugin_id) from None
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        return completion.content

    def _request_body(self, text: str) -> dict[str, Any]:
        """The JSON body of a chat completions request for ``text``; ValueError if unusable."""
        body: dict[str, Any]
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
            _check_messages(body.get("messages"))
            if body.get("stream"):
                raise ValueError("streaming is not supported")
        else:
            messages = [{"role": "user", "content": text}]
            if self.system_prompt:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            body = {"messages": messages}
        model = body.setdefault("model", self.model)
        if not isinstance(model, str) or not model:
            raise ValueError("no model configured: set settings.model or MOFA_LLM_MODEL")
        return body

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError("a JSON request needs 'messages', a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages[{index}] must be an object with a string 'role'")
