"""A minimal client for OpenAI-compatible chat completions, on the standard library alone."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["ChatClient", "Completion", "LLMError"]

#: Larger answers are refused rather than read into memory.
MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024
_USER_AGENT: Final = "mofa-sample-llm"


class LLMError(Exception):
    """The endpoint could not be reached, did not answer in time, or answered badly."""


@dataclass(frozen=True)
class Completion:
    """The assistant's answer and the token counts the endpoint reported (0 if none)."""

    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatClient:
    """Posts chat requests to ``{base_url}/chat/completions``; blocking, so run it in a thread."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 20.0

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"base URL must start with http:// or https://, got {self.base_url!r}")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def complete(self, body: dict[str, Any]) -> Completion:
        """Send ``body`` (``model``, ``messages`` and options) and return the first choice."""
        # The scheme was checked in __post_init__: only http and https get here.
        request = urllib.request.Request(  # noqa: S310
            self.url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
            },
        )
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        return _parse(self.url, self._send(request))

    def _send(self, request: urllib.request.Request) -> bytes:
        url = self.url
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw: bytes = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read(4096))
            raise LLMError(f"{url} answered HTTP {exc.code} {exc.reason}{detail}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timed_out() from None
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise LLMError(f"cannot reach {url}: {reason}") from None
        except TimeoutError:
            raise self._timed_out() from None
        except (http.client.HTTPException, OSError) as exc:
            raise LLMError(f"connection to {url} failed: {type(exc).__name__}: {exc}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise LLMError(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes")
        return raw

    def _timed_out(self) -> LLMError:
        return LLMError(f"{self.url} did not answer within {self.timeout:g} s")


def _error_detail(raw: bytes) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    text = raw.decode(errors="replace").strip()
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text[:200]
    return f": {message}" if message else ""


def _parse(url: str, raw: bytes) -> Completion:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LLMError(f"{url} answered with malformed JSON: {exc}") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"{url} answered without choices[0].message.content") from None
    if not isinstance(content, str):
        kind = type(content).__name__
        raise LLMError(f"{url} answered choices[0].message.content as {kind}, not a string")
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return Completion(
        content,
        prompt_tokens=_tokens(usage.get("prompt_tokens")),
        completion_tokens=_tokens(usage.get("completion_tokens")),
    )


def _tokens(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
