"""A kernel node in a dora-rs dataflow beside a bare Python dora echo node, measured in one run.

One ``dora run`` holds both servers and a load driver (benchmarks/_dora_driver.py)
wired to each of them the same way: the same payload (the request number as
a one-element string array), the same edges, ``queue_policy: backpressure``
on all of them. The bare node reads each string and sends it back; the
kernel node is ``mofa-kernel dora-node --plugin echo`` with a plugin that
returns its input. The driver takes turns between the two in short parts
(A B B A ...), so that a busy moment of the machine hits both alike; each
round yields its own kernel/bare ratios, and the result is the median of
those ratios, beside the median absolute figures.

    python benchmarks/dora_node.py            # 7 rounds: 1,000 round trips, 10,000 requests
    python benchmarks/dora_node.py --quick    # tiny sizes, to prove it runs
    python benchmarks/dora_node.py --output /tmp/benchmarks.md --no-write

Goals: round trip p50 with one request in flight at most 1.25x the bare
node's; 10,000 requests with 16 in flight: none lost, none answered twice,
throughput at least 0.8x the bare node's. The table is printed and written
into docs/benchmarks.md between the ``dora`` markers (the rest of that file
is left alone). Needs dora-rs and dora-rs-cli (Python 3.11 and newer).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DRIVER = Path(__file__).resolve().parent / "_dora_driver.py"
START = "<!-- dora:start -->"
END = "<!-- dora:end -->"
GOAL_LATENCY = 1.25
GOAL_THROUGHPUT = 0.8
IN_FLIGHT = 16

ECHO_PLUGIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class EchoPlugin(AgentPlugin):
    metadata = PluginMetadata("echo", "Echo", PluginType.TOOL)

    async def execute(self, input):
        return input
"""

BARE_NODE = """\
import pyarrow as pa
from dora import Node

STRING = pa.string()
node = Node()
for event in node:
    if event["type"] == "INPUT":
        text = event["value"][0].as_py()
        node.send_output("out", pa.array([text], type=STRING), event["metadata"])
"""

# Both servers are wired to the driver alike: a request edge in, a reply and an error edge
# back, all with backpressure (the bare node never sends on its error output).
DATAFLOW = """\
nodes:
  - id: load
    path: {driver}
    inputs:
      bare_reply: {{source: bare/out, queue_policy: backpressure}}
      bare_error: {{source: bare/error, queue_policy: backpressure}}
      kernel_reply: {{source: kernel/out, queue_policy: backpressure}}
      kernel_error: {{source: kernel/error, queue_policy: backpressure}}
    outputs: [bare_request, kernel_request]
  - id: bare
    path: {bare}
    inputs:
      request: {{source: load/bare_request, queue_policy: backpressure}}
    outputs: [out, error]
  - id: kernel
    path: mofa-kernel
    args: dora-node --plugin echo
    inputs:
      request: {{source: load/kernel_request, queue_policy: backpressure}}
    outputs: [out, error]
"""


@dataclass(frozen=True)
class Sizes:
    """Per server and round: round trips and requests, each in ``chunks`` alternating parts."""

    rounds: int
    round_trips: int
    requests: int
    chunks: int
    warmup: int


FULL = Sizes(rounds=7, round_trips=1000, requests=10_000, chunks=5, warmup=500)
QUICK = Sizes(rounds=2, round_trips=100, requests=300, chunks=2, warmup=50)


class Bench:
    """A temporary folder with the echo plugin installed as a distribution, and the dataflow."""

    def __init__(self, work: Path) -> None:
        self.work = work
        site = work / "site"
        info = site / "mofabench_echo-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: mofabench-echo\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            "[mofa.plugins]\necho = mofabench_echo:EchoPlugin\n", encoding="utf-8"
        )
        (info / "RECORD").write_text("", encoding="utf-8")
        (site / "mofabench_echo.py").write_text(ECHO_PLUGIN, encoding="utf-8")
        (work / "bare.py").write_text(BARE_NODE, encoding="utf-8")
        bin_dir = Path(sys.executable).parent
        self.dora = str(bin_dir / "dora") if (bin_dir / "dora").exists() else shutil.which("dora")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "DORA_"))}
        self.env["PYTHONPATH"] = str(site)
        self.env["PATH"] = os.pathsep.join([str(bin_dir), self.env.get("PATH", "")])
        self.env["MOFA_CACHE_DIR"] = str(work / "cache")

    def run(self, sizes: Sizes) -> dict[str, Any]:
        """One ``dora run`` of the driver and both servers; the driver's JSON result."""
        (self.work / "df.yml").write_text(
            DATAFLOW.format(driver=DRIVER, bare=self.work / "bare.py"), encoding="utf-8"
        )
        result_file = self.work / "result.json"
        env = {
            **self.env,
            "BENCH_ROUNDS": str(sizes.rounds),
            "BENCH_TRIPS": str(sizes.round_trips),
            "BENCH_REQUESTS": str(sizes.requests),
            "BENCH_IN_FLIGHT": str(IN_FLIGHT),
            "BENCH_CHUNKS": str(sizes.chunks),
            "BENCH_WARMUP": str(sizes.warmup),
            "BENCH_RESULT": str(result_file),
        }
        assert self.dora is not None
        done = subprocess.run(
            [self.dora, "run", "df.yml"],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0 or not result_file.exists():
            lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
            raise RuntimeError(f"the benchmark dataflow failed: {lines[-5:]}")
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
        if result["problem"]:
            raise RuntimeError(f"the benchmark dataflow stopped: {result['problem']}")
        return result


def measure(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    """Each round's kernel/bare ratios, their medians, and the median absolute figures."""
    result = bench.run(sizes)
    rounds: list[dict[str, dict[str, float]]] = result["rounds"]
    latency = [r["kernel"]["p50_us"] / r["bare"]["p50_us"] for r in rounds]
    rate = [r["kernel"]["per_second"] / r["bare"]["per_second"] for r in rounds]
    return {
        "latency_ratios": latency,
        "rate_ratios": rate,
        "latency_ratio": statistics.median(latency),
        "rate_ratio": statistics.median(rate),
        "p50_us": {
            s: statistics.median(r[s]["p50_us"] for r in rounds) for s in ("kernel", "bare")
        },
        "per_second": {
            s: statistics.median(r[s]["per_second"] for r in rounds) for s in ("kernel", "bare")
        },
        "totals": result["totals"],
    }


def report(figures: dict[str, Any], sizes: Sizes, quick: bool) -> str:
    """The Markdown section: the goals table, then how it was measured."""
    p50, rate = figures["p50_us"], figures["per_second"]
    latency_ratio, rate_ratio = figures["latency_ratio"], figures["rate_ratio"]
    faults = {side: _faults(figures["totals"][side]) for side in ("kernel", "bare")}
    clean = faults["kernel"] == (0, 0, 0)
    met_latency = latency_ratio <= GOAL_LATENCY
    met_rate = rate_ratio >= GOAL_THROUGHPUT and clean
    mode = "quick mode (tiny sizes; these figures prove nothing)" if quick else "full mode"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    rows = [
        "| goal | kernel node | bare Python echo node | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| round trip p50, one in flight ({sizes.round_trips:,} per round) "
        f"| {p50['kernel']:.0f} µs | {p50['bare']:.0f} µs | {latency_ratio:.2f}x "
        f"| <= {GOAL_LATENCY}x | {_met(met_latency)} |",
        f"| {sizes.requests:,} requests per round, {IN_FLIGHT} in flight: throughput "
        f"| {rate['kernel']:,.0f}/s | {rate['bare']:,.0f}/s | {rate_ratio:.2f}x "
        f"| >= {GOAL_THROUGHPUT}x, 0 lost, 0 twice | {_met(met_rate)} |",
        "| all rounds: lost / answered twice / wrong "
        f"| {' / '.join(map(str, faults['kernel']))} "
        f"| {' / '.join(map(str, faults['bare']))} | - | 0 / 0 / 0 | {_met(clean)} |",
    ]
    return "\n".join(
        [
            START,
            "## A plugin as a dora-rs dataflow node",
            "",
            "`mofa-kernel dora-node --plugin echo` (a plugin that returns its input)",
            "beside a bare Python dora node that reads each string and sends it back.",
            "Both run in one `dora run`, wired alike to one load driver: the same",
            "payload (the request number as a one-element string array), the same",
            "edges, `queue_policy: backpressure` on every one. After a warm-up that",
            f"is not counted, each of {sizes.rounds} rounds measures {sizes.round_trips:,} "
            "round trips per node",
            f"with one request in flight, then {sizes.requests:,} requests per node with "
            f"{IN_FLIGHT} in flight,",
            f"each split into {sizes.chunks} parts that take turns between the two nodes",
            "(A B B A A B ..., the other node first every other round), so that a busy",
            "moment of the machine falls on both. Each round gives its own kernel/bare",
            "ratios; the ratios shown are the medians of those, the absolute figures",
            "the medians of each node's own.",
            f"{mode.capitalize()}; {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
            f"{load[0]:.2f} at the end.",
            "",
            *rows,
            "",
            f"Each round's own ratios: round trip {_list(figures['latency_ratios'])}; "
            f"throughput {_list(figures['rate_ratios'])}.",
            "",
            "```console",
            "$ python benchmarks/dora_node.py            # full mode: writes this section",
            "$ python benchmarks/dora_node.py --quick    # tiny sizes",
            "```",
            END,
        ]
    )


def _faults(totals: dict[str, int]) -> tuple[int, int, int]:
    """Lost, answered twice, and wrong (a wrong text, or an answer on ``error``)."""
    lost = totals["sent"] - totals["answered"]
    return lost, totals["duplicates"], totals["wrong"] + totals["errors"]


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}x" for value in values)


def _met(value: bool) -> str:
    return "yes" if value else "**no**"


def write_section(section: str, path: Path) -> None:
    """Put ``section`` between the markers in ``path`` (appended if they are not there yet)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs")
    parser.add_argument("--output", type=Path, default=DOCS, help="the page to write into")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--rounds", type=int, help="rounds instead of the mode's (7, quick 2)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    with tempfile.TemporaryDirectory(prefix="mofabench-dora-") as temporary:
        bench = Bench(Path(temporary))
        if bench.dora is None:
            print("the dora command is not installed: pip install dora-rs-cli", file=sys.stderr)
            return 2
        figures = measure(bench, sizes)
    section = report(figures, sizes, args.quick)
    print()
    print(section)
    if not args.no_write:
        write_section(section, args.output)
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
