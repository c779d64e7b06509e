"""What travels on a dora edge: Arrow arrays in, Arrow arrays out, and MoFA's envelope.

An input is a one-element UTF-8 string array or a UInt8 array of UTF-8 bytes
(what Rust MoFA's adapter reads); the reply is built with the same type. A
MoFA agent's message is a JSON envelope, ``{"step_name": ..., "node_results":
..., "dataflow_status": ...}``, unwrapped before the plugin sees it and put
back around the reply.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final, Literal

import pyarrow as pa

__all__ = ["FORMATS", "Format", "Incoming", "decode", "encode", "error_text", "wrap"]

#: How inputs are read: ``auto`` unwraps a MoFA envelope when it sees one, ``raw`` never
#: does, ``mofa`` requires one.
Format = Literal["auto", "raw", "mofa"]
FORMATS: Final = ("auto", "raw", "mofa")

_STRING: Final = pa.string()
_LARGE_STRING: Final = pa.large_string()
_UINT8: Final = pa.uint8()
# The offsets of a one-element string array: 0, then the length in bytes.
_OFFSETS: Final = struct.Struct("<ii").pack


class Incoming:
    """One input, decoded: the text for the plugin, or why there is none."""

    __slots__ = ("binary", "problem", "skip", "status", "text", "wrapped")

    def __init__(self) -> None:
        #: The text the plugin executes (``None`` when there is a problem or nothing to do).
        self.text: str | None = None
        #: The input was UInt8 bytes: so is the reply.
        self.binary = False
        #: The input was a MoFA envelope: so is the reply.
        self.wrapped = False
        #: The envelope's ``dataflow_status``, copied into the reply's.
        self.status: Any = True
        #: An envelope whose ``node_results`` is null: mofa-core agents send these after
        #: their inputs close; there is nothing to execute and nothing to answer.
        self.skip = False
        #: Why the input cannot be executed; answered on ``error``.
        self.problem: str | None = None


def decode(value: Any, format: Format) -> Incoming:
    """Read an input's Arrow array as ``format`` says."""
    incoming = Incoming()
    kind = value.type
    if kind in (_STRING, _LARGE_STRING):
        if len(value) != 1 or value.null_count:
            incoming.problem = (
                f"expected a one-element string array, got {len(value)} elements"
                if len(value) != 1
                else "the input string is null"
            )
            return incoming
        text: str = value[0].as_py()
    elif kind == _UINT8:
        incoming.binary = True
        if value.null_count:
            incoming.problem = "the input bytes contain nulls"
            return incoming
        data = value.buffers()[1]
        raw = b"" if data is None else data.to_pybytes()[value.offset : value.offset + len(value)]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            incoming.problem = f"the input bytes are not UTF-8 ({exc.reason} at byte {exc.start})"
            return incoming
    else:
        incoming.problem = (
            f"expected a one-element string array or UInt8 bytes, got an array of {kind}"
        )
        return incoming
    if format == "raw":
        incoming.text = text
        return incoming
    envelope = _envelope(text)
    if envelope is None:
        if format == "mofa":
            incoming.problem = (
                "expected a MoFA envelope, a JSON object with 'step_name' and 'node_results'"
            )
        else:
            incoming.text = text
        return incoming
    incoming.wrapped = True
    incoming.status = envelope.get("dataflow_status", True)
    results = envelope["node_results"]
    if results is None:
        incoming.skip = True
    elif isinstance(results, str):
        incoming.text = results
    else:  # a structured result: the plugin gets it as JSON text
        incoming.text = json.dumps(results, ensure_ascii=False)
    return incoming


def _envelope(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "node_results" in data and "step_name" in data:
        return data
    return None


def wrap(text: str, plugin_id: str, status: Any) -> str:
    """A reply as a MoFA envelope from ``plugin_id``."""
    envelope = {"step_name": plugin_id, "node_results": text, "dataflow_status": status}
    return json.dumps(envelope, ensure_ascii=False)


def error_text(plugin_id: str | None, input_id: str, message: str) -> str:
    """The JSON object sent on ``error``."""
    return json.dumps(
        {"plugin_id": plugin_id, "input_id": input_id, "error": message}, ensure_ascii=False
    )


def encode(text: str, binary: bool) -> Any:
    """``text`` as a one-element string array, or as UInt8 UTF-8 bytes."""
    data = text.encode("utf-8")
    if binary:
        return pa.Array.from_buffers(_UINT8, len(data), [None, pa.py_buffer(data)])
    # Built from its two buffers: a third of the time pa.array([text], type=...) takes.
    return pa.StringArray.from_buffers(1, pa.py_buffer(_OFFSETS(0, len(data))), pa.py_buffer(data))
