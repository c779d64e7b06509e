"""A stand-in for a MoFA agent and a Rust peer, asking the calculator node.

The agent speaks as mofa-core's agents do: a one-element string array holding
an envelope, ``{"step_name": ..., "node_results": ..., "dataflow_status": ...}``,
and it reads ``node_results`` of the reply. After its questions it sends an
envelope whose ``node_results`` is null, as mofa-core agents do once their
inputs close; the kernel node leaves that one unanswered. The Rust peer sends
UTF-8 bytes as a UInt8 array, as Rust MoFA's dora adapter reads and writes them.
What it hears is printed and written to ``agent-transcript.txt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from dora import Node


def envelope(results: str | None) -> Any:
    message = {"step_name": "question", "node_results": results, "dataflow_status": True}
    return pa.array([json.dumps(message)], type=pa.string())


def main() -> None:
    node = Node()
    node.send_output("ask", envelope("6 * 7"), {"request_id": "agent-1"})
    node.send_output("ask", envelope(None), {"request_id": "agent-closing"})
    node.send_output("ask", envelope("6 / 0"), {"request_id": "agent-2"})
    rust = pa.array(list(b"2 ** 0.5"), type=pa.uint8())
    node.send_output("ask", rust, {"request_id": "rust-1"})
    heard: dict[str, str] = {}
    while len(heard) < 3:  # three replies: none for the null result
        event = node.next()
        if event is None or event["type"] != "INPUT":
            raise RuntimeError(f"the dataflow ended early: {event}")
        value, request_id = event["value"], event["metadata"]["request_id"]
        if value.type == pa.uint8():
            text = bytes(value.to_pylist()).decode()
            heard[request_id] = f"{request_id} on {event['id']}: {text}"
        else:
            reply = json.loads(value[0].as_py())
            heard[request_id] = (
                f"{request_id} on {event['id']}, from {reply['step_name']}:\n"
                f"    {reply['node_results']}"
            )
    lines = [heard[request_id] for request_id in sorted(heard)]
    for line in lines:
        print(line, flush=True)
    Path("agent-transcript.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
