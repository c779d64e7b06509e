"""The LLM plugin against a fake OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mofa_sample_llm import ChatClient, LLMPlugin

from mofa_kernel import (
    PluginConfig,
    PluginExecutionError,
    PluginManager,
    PluginState,
    PluginType,
)

ENVIRONMENT = (
    "MOFA_LLM_BASE_URL",
    "MOFA_LLM_MODEL",
    "MOFA_LLM_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    # urllib honours proxies from the environment; the fake server must be reached directly.
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def completion(content: object, **usage: int) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    if usage:
        body["usage"] = usage
    return json.dumps(body).encode()


@dataclass
class FakeEndpoint:
    """What the fake server answers next, and what it was asked."""

    base_url: str = ""
    status: int = 200
    body: bytes = field(default_factory=lambda: completion("Hello!"))
    content_type: str = "application/json"
    #: When set, the handler waits for this event before answering (to make the client time out).
    hold: threading.Event | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)


def make_handler(endpoint: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            endpoint.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            if endpoint.hold is not None:
                endpoint.hold.wait(timeout=30)
            try:
                self.send_response(endpoint.status)
                self.send_header("Content-Type", endpoint.content_type)
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test): nobody to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    return Handler


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    state = FakeEndpoint()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[PluginManager]:
    async with PluginManager() as manager:
        manager.register(LLMPlugin(), config=PluginConfig(config))
        report = await manager.start_all()
        assert report.ok, report.outcomes
        yield manager


@pytest.fixture
async def manager(endpoint: FakeEndpoint) -> AsyncIterator[PluginManager]:
    config = {"base_url": endpoint.base_url, "model": "test-model", "api_key": "sk-test"}
    async with running(config) as manager:
        yield manager


def test_metadata() -> None:
    meta = LLMPlugin().metadata
    assert meta.id == "llm"
    assert meta.plugin_type == PluginType.LLM


async def test_plain_text_is_one_user_message(
    manager: PluginManager, endpoint: FakeEndpoint
) -> None:
    assert await manager.execute("llm", "Say hello.") == "Hello!"
    [request] = endpoint.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {
        "model": "test-model",
        "messages": [{"role": "user", "content": "Say hello."}],
    }


async def test_json_input_is_a_full_request(manager: PluginManager, endpoint: FakeEndpoint) -> None:
    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Colour of the sky?"},
    ]
    request = {"messages": messages, "temperature": 0.2, "max_tokens": 5}
    await manager.execute("llm", json.dumps(request))
    assert endpoint.requests[0]["body"] == {**request, "model": "test-model"}


async def test_json_input_may_choose_the_model(
    manager: PluginManager, endpoint: FakeEndpoint
) -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], "model": "other"}
    await manager.execute("llm", json.dumps(request))
    assert endpoint.requests[0]["body"]["model"] == "other"


async def test_system_prompt_setting(endpoint: FakeEndpoint) -> None:
    config = {"base_url": endpoint.base_url, "model": "m", "system_prompt": "Be brief."}
    async with running(config) as manager:
        await manager.execute("llm", "hi")
    assert endpoint.requests[0]["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert "Authorization" not in endpoint.requests[0]["headers"]


async def test_settings_come_from_the_environment(
    endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_LLM_BASE_URL", endpoint.base_url)
    monkeypatch.setenv("MOFA_LLM_MODEL", "env-model")
    monkeypatch.setenv("MOFA_LLM_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    async with running({}) as manager:
        await manager.execute("llm", "hi")
    request = endpoint.requests[0]
    assert request["body"]["model"] == "env-model"
    assert request["headers"]["Authorization"] == "Bearer sk-env"


async def test_openai_variables_are_fallbacks(
    endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    async with running({"model": "m"}) as manager:
        await manager.execute("llm", "hi")
    assert endpoint.requests[0]["headers"]["Authorization"] == "Bearer sk-openai"


async def test_settings_win_over_the_environment(
    endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_LLM_BASE_URL", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("MOFA_LLM_MODEL", "env-model")
    async with running({"base_url": endpoint.base_url, "model": "settings-model"}) as manager:
        await manager.execute("llm", "hi")
    assert endpoint.requests[0]["body"]["model"] == "settings-model"


async def expect_error(manager: PluginManager, text: str, message: str) -> None:
    with pytest.raises(PluginExecutionError) as caught:
        await manager.execute("llm", text)
    assert message in str(caught.value)
    assert caught.value.plugin_id == "llm"
    # A bad answer is this request's failure, not the plugin's.
    assert manager.state("llm") == PluginState.RUNNING


async def test_unreachable_endpoint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on that port any more: the connection is refused.
    base_url = f"http://127.0.0.1:{port}/v1"
    async with running({"base_url": base_url, "model": "m"}) as manager:
        await expect_error(manager, "hi", f"cannot reach {base_url}/chat/completions")


async def test_timeout(endpoint: FakeEndpoint) -> None:
    endpoint.hold = threading.Event()
    async with running({"base_url": endpoint.base_url, "model": "m", "timeout": 0.3}) as manager:
        await expect_error(manager, "hi", "did not answer within 0.3 s")
    endpoint.hold.set()


async def test_http_error_with_openai_error_body(
    manager: PluginManager, endpoint: FakeEndpoint
) -> None:
    endpoint.status = 401
    endpoint.body = json.dumps({"error": {"message": "Incorrect API key provided"}}).encode()
    await expect_error(manager, "hi", "answered HTTP 401 Unauthorized: Incorrect API key provided")


async def test_http_error_with_text_body(manager: PluginManager, endpoint: FakeEndpoint) -> None:
    endpoint.status = 503
    endpoint.content_type = "text/plain"
    endpoint.body = b"overloaded, try later"
    await expect_error(manager, "hi", "answered HTTP 503 Service Unavailable: overloaded")


async def test_malformed_json(manager: PluginManager, endpoint: FakeEndpoint) -> None:
    endpoint.body = b'{"choices": [ oops'
    await expect_error(manager, "hi", "answered with malformed JSON")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"choices": []}', "answered without choices[0].message.content"),
        (b"[1, 2]", "answered without choices[0].message.content"),
        (completion(None), "answered choices[0].message.content as NoneType, not a string"),
    ],
)
async def test_unexpected_json(
    manager: PluginManager, endpoint: FakeEndpoint, body: bytes, message: str
) -> None:
    endpoint.body = body
    await expect_error(manager, "hi", message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"temperature": 1}', "a JSON request needs 'messages', a non-empty list"),
        ('{"messages": [{"content": "x"}]}', "messages[0] must be an object with a string 'role'"),
        ('{"messages": [{"role": "user", "content": "x"}], "stream": true}', "streaming"),
    ],
)
async def test_bad_json_requests(
    manager: PluginManager, endpoint: FakeEndpoint, text: str, message: str
) -> None:
    await expect_error(manager, text, message)
    assert endpoint.requests == []


async def test_no_model_configured(endpoint: FakeEndpoint) -> None:
    async with running({"base_url": endpoint.base_url}) as manager:
        await expect_error(manager, "hi", "no model configured")
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "file:///etc/passwd"}, "settings.base_url: base URL must start with http"),
        ({"timeout": 0}, "settings.timeout: expected a positive number"),
        ({"timeout": "soon"}, "settings.timeout: expected a number"),
        ({"model": 3}, "settings.model: expected a string"),
    ],
)
async def test_bad_settings_fail_init(settings: dict[str, Any], message: str) -> None:
    async with PluginManager() as manager:
        manager.register(LLMPlugin(), config=PluginConfig(settings))
        report = await manager.start_all()
        assert report.failed == ["llm"]
        error = report.outcomes["llm"].error
        assert error is not None
        assert message in error


async def test_stats_count_requests_and_tokens(
    manager: PluginManager, endpoint: FakeEndpoint
) -> None:
    endpoint.body = completion("ok", prompt_tokens=7, completion_tokens=2)
    await manager.execute("llm", "one")
    await manager.execute("llm", "two")
    endpoint.status = 500
    with pytest.raises(PluginExecutionError):
        await manager.execute("llm", "three")
    assert (await manager.stats())["llm"] == {
        "requests": 3,
        "failures": 1,
        "prompt_tokens": 14,
        "completion_tokens": 4,
    }


def test_the_api_key_is_not_in_the_repr() -> None:
    client = ChatClient("http://127.0.0.1:1/v1", api_key="sk-secret")
    assert "sk-secret" not in repr(client)
