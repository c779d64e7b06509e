"""A dora node that sends numbered requests, keeps a number of them in flight, checks each reply.

Run by a dataflow (tests/integration/test_dora_dataflow.py, benchmarks/dora_node.py).
Settings come from the environment: ``LOAD_COUNT`` requests, ``LOAD_IN_FLIGHT``
at a time, ``LOAD_REPLY`` (``calculator``: request ``i * 2`` expects ``2i``;
``echo``: expects the request back), ``LOAD_RESULT`` the JSON file to write.
Each request's metadata carries ``request_id``; the file records how many
distinct ids came back, how many twice, how many wrong, and every round trip
in microseconds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
from dora import Node

STRING = pa.string()


def main() -> None:
    count = int(os.environ["LOAD_COUNT"])
    in_flight = int(os.environ["LOAD_IN_FLIGHT"])
    echo = os.environ.get("LOAD_REPLY", "calculator") == "echo"
    node = Node()
    sent_at: dict[int, int] = {}
    seen: set[int] = set()
    duplicates = wrong = errors = 0
    round_trips: list[float] = []
    problem = None

    def send(number: int) -> None:
        text = str(number) if echo else f"{number} * 2"
        sent_at[number] = time.perf_counter_ns()
        node.send_output("request", pa.array([text], type=STRING), {"request_id": number})

    began = time.perf_counter()
    sent = 0
    while sent < min(in_flight, count):
        send(sent)
        sent += 1
    while len(seen) < count:
        event = node.next(timeout=60.0)
        if event is None or event["type"] in ("STOP", "ERROR"):
            problem = f"stopped waiting after {len(seen)} replies: {event and event['type']}"
            break
        if event["type"] != "INPUT":
            continue
        now = time.perf_counter_ns()
        number = int(event["metadata"]["request_id"])
        if number in seen:
            duplicates += 1
            continue
        seen.add(number)
        round_trips.append((now - sent_at[number]) / 1000)
        reply = event["value"][0].as_py()
        if event["id"] != "reply":
            errors += 1
        elif reply != (str(number) if echo else str(number * 2)):
            wrong += 1
        if sent < count:
            send(sent)
            sent += 1
    elapsed = time.perf_counter() - began
    result = {
        "count": count,
        "sent": sent,
        "answered": len(seen),
        "duplicates": duplicates,
        "wrong": wrong,
        "errors": errors,
        "problem": problem,
        "seconds": elapsed,
        "round_trips_us": round_trips,
    }
    Path(os.environ["LOAD_RESULT"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
