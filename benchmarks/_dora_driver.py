"""The load of benchmarks/dora_node.py: a dora node that takes turns between two echo servers.

It runs in the same dataflow as both servers (the bare Python echo node and
the kernel node), each wired to it the same way, and measures them in
alternating blocks so that a busy moment of the machine hits both alike:
each round measures the round trip with one request in flight, then the
throughput with ``BENCH_IN_FLIGHT`` in flight, each in chunks that take
turns between the servers (A B B A A B ..., starting with the other server
every other round). A block waits for all its replies before the next one.

Settings come from the environment: ``BENCH_ROUNDS``, ``BENCH_TRIPS`` (round
trips per server and round), ``BENCH_REQUESTS`` (requests per server and
round), ``BENCH_CHUNKS`` (the parts each is split into), ``BENCH_IN_FLIGHT``,
``BENCH_WARMUP`` (requests per server before the first round, not measured),
``BENCH_RESULT`` (the JSON file to write).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from dora import Node

STRING = pa.string()
SIDES = ("bare", "kernel")
#: How long a block waits for a reply before it gives up (seconds).
PATIENCE = 60.0


class Problem(Exception):
    """The dataflow stopped answering: the run is reported as failed."""


class Driver:
    """Sends numbered echo requests to one server at a time and checks every reply."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.number = 0
        # Per server: every request id answered so far, and what went wrong.
        self.seen: dict[str, set[int]] = {side: set() for side in SIDES}
        self.totals = {
            side: {"sent": 0, "answered": 0, "duplicates": 0, "wrong": 0, "errors": 0}
            for side in SIDES
        }

    def block(self, side: str, count: int, in_flight: int) -> dict[str, Any]:
        """``count`` requests to ``side``, ``in_flight`` at a time; its round trips and rate."""
        node, totals, seen = self.node, self.totals[side], self.seen[side]
        output = f"{side}_request"
        sent_at: dict[int, int] = {}
        trips: list[float] = []
        left = count

        def send() -> None:
            nonlocal left
            self.number += 1
            sent_at[self.number] = time.perf_counter_ns()
            text = str(self.number)
            node.send_output(output, pa.array([text], type=STRING), {"request_id": self.number})
            totals["sent"] += 1
            left -= 1

        began = time.perf_counter()
        for _ in range(min(in_flight, count)):
            send()
        while sent_at:
            event = node.next(timeout=PATIENCE)
            if event is None or event["type"] in ("STOP", "ERROR"):
                reason = "the event stream ended" if event is None else event["type"]
                raise Problem(f"{side}: stopped waiting with {len(sent_at)} in flight: {reason}")
            if event["type"] != "INPUT":
                continue
            now = time.perf_counter_ns()
            number = int(event["metadata"]["request_id"])
            if not event["id"].startswith(side) or number not in sent_at:
                # Another server's reply, or one already counted: both are failures here.
                counted = self.totals[event["id"].split("_")[0]]
                counted["duplicates" if number in seen else "wrong"] += 1
                continue
            trips.append((now - sent_at.pop(number)) / 1000)
            seen.add(number)
            totals["answered"] += 1
            if event["id"] != f"{side}_reply":
                totals["errors"] += 1
            elif event["value"][0].as_py() != str(number):
                totals["wrong"] += 1
            if left:
                send()
        return {"trips": trips, "seconds": time.perf_counter() - began}

    def round(self, number: int, chunks: int, trips: int, requests: int, in_flight: int) -> Any:
        """One round: each server's p50 round trip and throughput, in alternating chunks.

        The round trips (one in flight), then the requests (``in_flight`` at a
        time), each split into ``chunks`` parts that alternate between the
        servers, A B B A A B ..., so that a busy second of the machine falls
        on both; a server's figure pools its parts.
        """
        pooled: dict[str, list[float]] = {side: [] for side in SIDES}
        seconds = dict.fromkeys(SIDES, 0.0)
        for count, flight in ((trips, 1), (requests, in_flight)):
            for part in range(2 * chunks):
                side = SIDES[((part + 1) // 2 % 2) ^ (number % 2)]
                block = self.block(side, count // chunks, flight)
                if flight == 1:
                    pooled[side].extend(block["trips"])
                else:
                    seconds[side] += block["seconds"]
        return {
            side: {
                "p50_us": statistics.median(pooled[side]),
                "per_second": requests // chunks * chunks / seconds[side],
            }
            for side in SIDES
        }


def main() -> None:
    rounds = int(os.environ["BENCH_ROUNDS"])
    trips = int(os.environ["BENCH_TRIPS"])
    requests = int(os.environ["BENCH_REQUESTS"])
    in_flight = int(os.environ["BENCH_IN_FLIGHT"])
    warmup = int(os.environ["BENCH_WARMUP"])
    chunks = int(os.environ["BENCH_CHUNKS"])
    driver = Driver(Node())
    measured: list[dict[str, dict[str, float]]] = []
    problem = None
    try:
        for side in SIDES:  # processes, caches and queues warmed before anything counts
            driver.block(side, warmup, 1)
            driver.block(side, warmup, in_flight)
        for number in range(rounds):
            measured.append(driver.round(number, chunks, trips, requests, in_flight))
    except Problem as exc:
        problem = str(exc)
    result = {"rounds": measured, "totals": driver.totals, "problem": problem}
    Path(os.environ["BENCH_RESULT"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
