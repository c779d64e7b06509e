"""The wire between a host and a worker: length-prefixed frames of JSON, both ways.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON; each JSON document is an array whose first element names the message.
Model types (metadata, config, events) travel as the kernel's serde JSON, the
same JSON as the Rust crate. This module holds only what both sides need: the
encoder, an incremental decoder, and the message names. It imports nothing of
mofa_kernel, so a worker starts without the host's machinery.
"""

from __future__ import annotations

import json
import struct
from json.encoder import encode_basestring as _quote
from typing import Any, Final

__all__ = [
    "CALL",
    "CANCEL",
    "CTX",
    "EVENT",
    "EXIT",
    "FAIL",
    "HEADER",
    "MAX_FRAME",
    "MEMORY_EXIT",
    "META",
    "OK",
    "READY",
    "REPLY",
    "SPEC",
    "STATE",
    "FrameDecoder",
    "FrameError",
    "encode",
    "encode_call",
    "encode_ok",
]

HEADER: Final = struct.Struct(">I")
#: The exit status of a worker whose own machinery ran out of memory under its cap.
MEMORY_EXIT: Final = 86
#: A frame larger than this is refused: a corrupt length must not make a side allocate gigabytes.
MAX_FRAME: Final = 1 << 30

# Host -> worker.
SPEC: Final = "spec"  # ["spec", {...}]: which plugin to import, and its limits
CALL: Final = "call"  # ["call", id, method, args]: run one plugin method
EVENT: Final = "event"  # ["event", event]: a kernel event for on_plugin_event
STATE: Final = "state"  # ["state", state]: the plugin's state, as the host's lifecycle set it
REPLY: Final = "reply"  # ["reply", id, ok, value]: the answer to a worker's CTX request
CANCEL: Final = "cancel"  # ["cancel", id]: the caller gave up on a CALL; cancel its task
EXIT: Final = "exit"  # ["exit"]: finish and leave
# Worker -> host.
READY: Final = "ready"  # ["ready"]: started, mofa_kernel imported; waiting for its spec
META: Final = "meta"  # ["meta", metadata, hooks]: the plugin is imported; who it is
OK: Final = "ok"  # ["ok", id, value]: a CALL returned
FAIL: Final = "fail"  # ["fail", id, fault]: a CALL raised (id null: the import failed)
CTX: Final = "ctx"  # ["ctx", id, op, args]: a PluginContext request to the host

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = json.JSONDecoder().decode
_pack = HEADER.pack


class FrameError(Exception):
    """A frame that cannot be read: the other side is broken or not a mofa worker."""


def encode(message: list[Any]) -> bytes:
    """One frame, header included, ready for a single write."""
    body = _dumps(message).encode()
    return _pack(len(body)) + body


def encode_call(call_id: int, method: str, args: list[Any]) -> bytes:
    """The frame of ``["call", call_id, method, args]``; quick for one text argument."""
    if len(args) == 1 and type(args[0]) is str:
        body = f'["call",{call_id},"{method}",[{_quote(args[0])}]]'.encode()
        return _pack(len(body)) + body
    return encode([CALL, call_id, method, args])


def encode_ok(call_id: int, value: Any) -> bytes:
    """The frame of ``["ok", call_id, value]``; quick for a text answer."""
    if type(value) is str:
        body = f'["ok",{call_id},{_quote(value)}]'.encode()
        return _pack(len(body)) + body
    return encode([OK, call_id, value])


class FrameDecoder:
    """Turns a byte stream into messages, however the stream is cut into reads."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[Any]]:
        """The messages completed by ``data``, in order; keeps an incomplete tail."""
        buffer = self._buffer
        if not buffer and len(data) >= 4:
            # The common case: one whole frame per read, no copying into the buffer.
            (size,) = HEADER.unpack_from(data)
            if len(data) == size + 4:
                return [_decode(data[4:])]
        buffer += data
        messages = []
        while len(buffer) >= 4:
            (size,) = HEADER.unpack_from(buffer)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes announced; the limit is {MAX_FRAME}")
            end = size + 4
            if len(buffer) < end:
                break
            messages.append(_decode(bytes(buffer[4:end])))
            del buffer[:end]
        return messages


def _decode(body: bytes) -> list[Any]:
    try:
        message = _loads(body.decode())
    except ValueError as exc:
        raise FrameError(f"frame is not JSON: {exc}") from None
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise FrameError("frame is not a message (a JSON array starting with its name)")
    return message
