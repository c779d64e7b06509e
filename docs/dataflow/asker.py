"""The sender of ``isolated.yml``: it crashes the isolated plugin's worker and hears the node
serve on.

It asks ``fragile`` (the plugin of the isolation page, in a worker process)
which process it runs in, sends it ``crash`` (a segfault in the worker), asks
the calculator (inline, in the node's own process), then sends ``hello`` to
``fragile`` until it is answered on ``out``: an input that arrives while the
kernel restarts the plugin is answered on ``error``. Last it asks ``fragile``
which process it runs in now. What it hears is printed and written to
``isolated-transcript.txt``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
from dora import Node

#: How long to keep asking a plugin that does not come back (past its restart policy).
PATIENCE = 120.0


class Asker:
    """One request at a time, each matched to its reply by ``request_id``."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.sent = 0

    def ask(self, plugin: str, text: str) -> tuple[bool, str]:
        """Send ``text`` to ``plugin``; return (answered on ``out``, the reply)."""
        self.sent += 1
        self.node.send_output(plugin, pa.array([text]), {"request_id": self.sent})
        while True:
            event = self.node.next()
            if event is None or event["type"] == "STOP":
                raise RuntimeError(f"the dataflow stopped before request {self.sent} was answered")
            if event["type"] == "INPUT" and event["metadata"].get("request_id") == self.sent:
                return event["id"] == "reply", event["value"][0].as_py()


def main() -> None:
    asker = Asker(Node())
    lines = []
    _, before = asker.ask("fragile", "pid")
    ok, reply = asker.ask("fragile", "crash")
    lines.append(f"crash -> {'out' if ok else 'error'}: {json.loads(reply)['error']}")
    lines.append(f"6 * 7 -> {asker.ask('calculator', '6 * 7')[1]}")
    give_up = time.monotonic() + PATIENCE
    ok, reply = asker.ask("fragile", "hello")
    while not ok and time.monotonic() < give_up:  # refused until the plugin runs again
        ok, reply = asker.ask("fragile", "hello")
    lines.append(f"hello -> {reply}")
    _, after = asker.ask("fragile", "pid")
    lines.append(f"fragile runs in a new worker: {after != before}")
    for line in lines:
        print(line, flush=True)
    Path("isolated-transcript.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
