"""A kernel node in a dora-rs dataflow beside a bare Python dora echo node, measured in one run.

Both answer the same load generator (tests/integration/dora/loadgen.py) through
``dora run``: the bare node reads each string and sends it back; the kernel
node is ``mofa-kernel dora-node --plugin echo`` with a plugin that returns
its input. Runs alternate between the two so that a busy moment hits both.

    python benchmarks/dora_node.py            # 2,000 round trips, 10,000 requests, 5 rounds
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
LOADGEN = ROOT / "tests" / "integration" / "dora" / "loadgen.py"
START = "<!-- dora:start -->"
END = "<!-- dora:end -->"
GOAL_LATENCY = 1.25
GOAL_THROUGHPUT = 0.8

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

DATAFLOW = """\
nodes:
  - id: load
    path: {loadgen}
    inputs:
      reply:
        source: server/out
        queue_policy: backpressure
    outputs: [request]
  - id: server
    path: {path}
    args: {args}
    inputs:
      request:
        source: load/request
        queue_policy: backpressure
    outputs: [out, error]
"""


@dataclass(frozen=True)
class Sizes:
    round_trips: int
    requests: int
    rounds: int


FULL = Sizes(2000, 10_000, 5)
QUICK = Sizes(200, 500, 1)


class Bench:
    """A temporary folder with the echo plugin installed as a distribution, and the dataflows."""

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
        self.runs = 0

    def run(self, server: str, count: int, in_flight: int) -> dict[str, Any]:
        """One ``dora run`` of the load generator against ``server`` (``bare`` or ``kernel``)."""
        self.runs += 1
        folder = self.work / f"run{self.runs}"
        folder.mkdir()
        if server == "bare":
            path, args = str(self.work / "bare.py"), "''"
        else:
            path, args = "mofa-kernel", "dora-node --plugin echo"
        (folder / "df.yml").write_text(
            DATAFLOW.format(loadgen=LOADGEN, path=path, args=args), encoding="utf-8"
        )
        env = {
            **self.env,
            "LOAD_COUNT": str(count),
            "LOAD_IN_FLIGHT": str(in_flight),
            "LOAD_REPLY": "echo",
            "LOAD_RESULT": str(folder / "result.json"),
        }
        assert self.dora is not None
        done = subprocess.run(
            [self.dora, "run", "df.yml"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        result_file = folder / "result.json"
        if done.returncode != 0 or not result_file.exists():
            lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
            raise RuntimeError(f"dora run of the {server} node failed: {lines[-5:]}")
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
        shutil.rmtree(folder, ignore_errors=True)
        return result


def measure(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    """Interleaved rounds: p50 round trip with one in flight, then throughput with 16."""
    p50: dict[str, list[float]] = {"bare": [], "kernel": []}
    rate: dict[str, list[float]] = {"bare": [], "kernel": []}
    lost = {"bare": 0, "kernel": 0}
    twice = {"bare": 0, "kernel": 0}
    wrong = {"bare": 0, "kernel": 0}
    for round_number in range(sizes.rounds):
        for server in ("bare", "kernel") if round_number % 2 == 0 else ("kernel", "bare"):
            print(f"  round {round_number + 1}: {server} node, one in flight ...", flush=True)
            single = bench.run(server, sizes.round_trips, 1)
            # The first tenth warms up the processes and caches; it is left out.
            trips = single["round_trips_us"][sizes.round_trips // 10 :]
            p50[server].append(statistics.median(trips))
            print(f"  round {round_number + 1}: {server} node, 16 in flight ...", flush=True)
            load = bench.run(server, sizes.requests, 16)
            rate[server].append(load["answered"] / load["seconds"])
            lost[server] += load["count"] - load["answered"]
            twice[server] += load["duplicates"]
            wrong[server] += load["wrong"] + load["errors"] + single["wrong"] + single["errors"]
    return {
        # Each round's own ratios: how far they move with the machine's load.
        "latency_ratios": [k / b for k, b in zip(p50["kernel"], p50["bare"], strict=True)],
        "rate_ratios": [k / b for k, b in zip(rate["kernel"], rate["bare"], strict=True)],
        "p50_us": {k: statistics.median(v) for k, v in p50.items()},
        "per_second": {k: statistics.median(v) for k, v in rate.items()},
        "lost": lost,
        "duplicates": twice,
        "wrong": wrong,
    }


def report(figures: dict[str, Any], sizes: Sizes, quick: bool) -> str:
    p50, rate = figures["p50_us"], figures["per_second"]
    latency_ratio = p50["kernel"] / p50["bare"]
    rate_ratio = rate["kernel"] / rate["bare"]
    lost, twice = figures["lost"]["kernel"], figures["duplicates"]["kernel"]
    wrong = figures["wrong"]["kernel"]
    met_latency = latency_ratio <= GOAL_LATENCY
    met_rate = rate_ratio >= GOAL_THROUGHPUT and lost == 0 and twice == 0 and wrong == 0
    spread = (
        f"Each round's own ratios ranged {_span(figures['latency_ratios'])} (round trip) "
        f"and {_span(figures['rate_ratios'])} (throughput)."
    )
    mode = "quick mode (tiny sizes; these figures prove nothing)" if quick else "full mode"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    rows = [
        "| goal | kernel node | bare Python echo node | ratio | target | met |",
        "|---|---|---|---|---|---|",
        f"| round trip p50, one in flight ({sizes.round_trips} requests) "
        f"| {p50['kernel']:.0f} µs | {p50['bare']:.0f} µs | {latency_ratio:.2f}x "
        f"| <= {GOAL_LATENCY}x | {_met(met_latency)} |",
        f"| {sizes.requests:,} requests, 16 in flight: throughput "
        f"| {rate['kernel']:,.0f}/s | {rate['bare']:,.0f}/s | {rate_ratio:.2f}x "
        f"| >= {GOAL_THROUGHPUT}x, 0 lost, 0 twice | {_met(met_rate)} |",
        f"| the same: lost / answered twice / wrong | {lost} / {twice} / {wrong} "
        f"| {figures['lost']['bare']} / {figures['duplicates']['bare']} / "
        f"{figures['wrong']['bare']} | - | 0 / 0 / 0 | {_met(lost == twice == wrong == 0)} |",
    ]
    return "\n".join(
        [
            START,
            "## A plugin as a dora-rs dataflow node",
            "",
            "`mofa-kernel dora-node --plugin echo` (a plugin that returns its input)",
            "beside a bare Python dora node that reads each string and sends it back,",
            "both answering the same load generator through `dora run`, with",
            "`queue_policy: backpressure` on every edge; runs alternate between the two.",
            f"Medians of {sizes.rounds} round(s); {mode}; "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at the end.",
            "",
            *rows,
            "",
            spread,
            "",
            "```console",
            "$ python benchmarks/dora_node.py            # full mode: writes this section",
            "$ python benchmarks/dora_node.py --quick    # tiny sizes",
            "```",
            END,
        ]
    )


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}x to {max(values):.2f}x"


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
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
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
