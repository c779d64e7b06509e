"""Edit-to-new-code latency of hot reload, beside the time to restart the host instead.

A plugin package is written to a temporary folder, registered and started
under a manager with the Immediate strategy and the watchers on. Each round
rewrites the plugin's file with a new version and measures the time from the
write to the moment the new code serves (the ``ReloadCompleted`` event,
emitted right after the swap; the answer of an ``execute`` is then checked).
The restart figure is the wall time of a fresh host process that imports the
kernel, registers and starts the same plugin and answers once.

    python benchmarks/hot_reload_latency.py            # 100 edits, 10 restarts
    python benchmarks/hot_reload_latency.py --quick    # 10 edits, 3 restarts (CI)

The table is printed and written into docs/benchmarks.md, between the
``hot-reload`` markers (the rest of that file is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START = "<!-- hot-reload:start -->"
END = "<!-- hot-reload:end -->"
GOAL_MEDIAN_MS = 100.0
GOAL_P95_MS = 250.0

PLUGIN = """\
from mofa_kernel import AgentPlugin, HotReloadable, PluginMetadata, PluginType

VERSION = {version}


class Plugin(AgentPlugin, HotReloadable):
    metadata = PluginMetadata("bench", "Bench", PluginType.TOOL)

    def __init__(self):
        self.calls = 0

    async def execute(self, input):
        self.calls += 1
        return f"{{VERSION}}:{{input}}"

    async def save_state(self):
        return {{"calls": self.calls}}

    async def restore_state(self, state):
        self.calls = state["calls"]
"""

HOST = """\
import asyncio
import sys

sys.path.insert(0, sys.argv[1])

from mofa_kernel import PluginManager
import bench_plugin


async def main():
    async with PluginManager() as manager:
        manager.register(bench_plugin.Plugin())
        await manager.start_all()
        print(await manager.execute("bench", "ping"))


asyncio.run(main())
"""


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


async def measure_reloads(folder: Path, edits: int) -> tuple[list[float], list[float]]:
    """Edit-to-new-code latencies and the reload transactions' own durations, in ms."""
    from mofa_kernel import HotReloadConfig, PluginManager, ReloadEvent, ReloadStrategy

    sys.path.insert(0, str(folder))
    file = folder / "bench_plugin" / "__init__.py"
    import bench_plugin  # type: ignore[import-not-found]

    config = HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE)
    latencies: list[float] = []
    durations: list[float] = []
    async with PluginManager(hot_reload=config) as manager:
        manager.register(bench_plugin.Plugin())
        await manager.start_all()
        loop = asyncio.get_running_loop()
        async with manager.hot_reloading():
            for version in range(2, edits + 2):
                done: asyncio.Future[float] = loop.create_future()

                def completed(event: object, done: asyncio.Future[float] = done) -> None:
                    if isinstance(event, ReloadEvent.ReloadCompleted) and not done.done():
                        if event.success:
                            durations.append(event.duration * 1000)
                            done.set_result(time.perf_counter())
                        else:
                            done.set_exception(RuntimeError(f"reload failed: {event}"))

                manager.add_listener(completed)
                began = time.perf_counter()
                file.write_text(PLUGIN.format(version=version), encoding="utf-8")
                served = await asyncio.wait_for(done, 30)
                manager.remove_listener(completed)
                latencies.append((served - began) * 1000)
                answer = await manager.execute("bench", "x")
                if answer != f"{version}:x":
                    raise RuntimeError(f"version {version} was reloaded but {answer!r} answered")
    return latencies, durations


def measure_restarts(folder: Path, runs: int) -> list[float]:
    """Wall time of a fresh host process that starts the plugin and answers once, in ms."""
    host = folder / "host.py"
    host.write_text(HOST, encoding="utf-8")
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(host), str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append((time.perf_counter() - began) * 1000)
        if result.returncode != 0 or not result.stdout.strip().endswith(":ping"):
            raise RuntimeError(f"the host process failed:\n{result.stdout}{result.stderr}")
    return times


def report(
    latencies: list[float], durations: list[float], restarts: list[float], quick: bool
) -> str:
    """The markdown section for docs/benchmarks.md."""
    median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    met = median <= GOAL_MEDIAN_MS and p95 <= GOAL_P95_MS
    rows = [
        ("edit to new code, hot reload (Immediate)", latencies),
        ("of which the reload transaction", durations),
        ("restart the host process instead", restarts),
    ]
    table = [
        "| measure | runs | median | p95 |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {len(values)} | {statistics.median(values):.1f} ms "
            f"| {percentile(values, 0.95):.1f} ms |"
            for label, values in rows
        ),
    ]
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    mode = "quick mode" if quick else "full mode"
    return "\n".join(
        [
            START,
            "## Hot reload latency",
            "",
            "From saving a plugin's file to the new code serving, with the Immediate",
            "strategy and inotify watching, beside restarting a host process instead",
            f"(`benchmarks/hot_reload_latency.py`, {mode}; {machine}).",
            "",
            *table,
            "",
            f"Goal: median at most {GOAL_MEDIAN_MS:.0f} ms and p95 at most "
            f"{GOAL_P95_MS:.0f} ms: {'met' if met else 'NOT met'}.",
            END,
        ]
    )


def write_section(section: str, path: Path) -> None:
    """Replace this benchmark's section of ``path`` (or add it); the rest stays as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 edits and 3 restarts")
    parser.add_argument("--edits", type=int, help="how many edits to time (default 100)")
    parser.add_argument("--restarts", type=int, help="how many restarts to time (default 10)")
    parser.add_argument("--output", type=Path, default=DOCS, help="the markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    edits = args.edits or (10 if args.quick else 100)
    restarts = args.restarts or (3 if args.quick else 10)
    with tempfile.TemporaryDirectory(prefix="mofa-bench-") as temporary:
        folder = Path(temporary)
        package = folder / "bench_plugin"
        package.mkdir()
        (package / "__init__.py").write_text(PLUGIN.format(version=1), encoding="utf-8")
        latencies, durations = asyncio.run(measure_reloads(folder, edits))
        restart_times = measure_restarts(folder, restarts)
    section = report(latencies, durations, restart_times, args.quick)
    print(textwrap.dedent(section.split("\n", 1)[1].rsplit("\n", 1)[0]))
    if not args.no_write:
        write_section(section, args.output)
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
