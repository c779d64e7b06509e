"""The tutor: the math skill's pipeline spread over dora nodes.

It asks the ``calculator`` node to compute each question, asks the ``memory``
node to store each answer under ``answer.N``, then asks for the stored keys.
Each request carries a ``request_id`` in its metadata, and the reply (on
``out`` or ``error`` of the kernel node) carries it back. The transcript is
printed and written to ``transcript.txt`` in the working directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from dora import Node

QUESTIONS = ["2 * (3 + 4)", "sqrt(2) / 2", "1 / 0", "2 ** 10"]


class Tutor:
    """A client of the kernel nodes: one request at a time, each matched to its reply."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.sent = 0

    def ask(self, output: str, text: str) -> tuple[bool, str]:
        """Send ``text`` on ``output``; return (ok, reply) once the reply with our id is back."""
        self.sent += 1
        request_id = f"r{self.sent}"
        self.node.send_output(
            output, pa.array([text], type=pa.string()), {"request_id": request_id}
        )
        while True:
            event: dict[str, Any] | None = self.node.next()
            if event is None or event["type"] == "STOP":
                raise RuntimeError(f"the dataflow stopped before {request_id} was answered")
            if event["type"] == "INPUT" and event["metadata"].get("request_id") == request_id:
                reply = event["value"][0].as_py()
                return event["id"] in ("result", "stored"), reply


def main() -> None:
    tutor = Tutor(Node())
    lines: list[str] = []
    for number, question in enumerate(QUESTIONS, start=1):
        ok, reply = tutor.ask("expression", question)
        if not ok:
            lines.append(f"{question}: {json.loads(reply)['error']}")
            continue
        lines.append(f"{question} = {reply}")
        request = {"op": "set", "key": f"answer.{number}", "value": reply}
        stored, _ = tutor.ask("store", json.dumps(request))
        if not stored:
            raise RuntimeError(f"memory refused {request}")
    _, keys = tutor.ask("store", json.dumps({"op": "keys", "prefix": "answer."}))
    lines.append("stored: " + ", ".join(json.loads(keys)["keys"]))
    for line in lines:
        print(line, flush=True)
    Path("transcript.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
