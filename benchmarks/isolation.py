"""What process isolation costs, each figure beside its anchor, measured side by side in one run.

    python benchmarks/isolation.py            # full sizes
    python benchmarks/isolation.py --quick    # tiny sizes, to prove it runs (what CI runs)

- execute round trip of an isolated no-op plugin through ``PluginManager.execute``,
  against a bare ``multiprocessing.Pipe`` ping-pong of the same payload with a
  child process (the floor for one process hop); goal at most 1.5x. The two
  run in paired rounds (a chunk of calls of each, back to back, the order
  alternating), and the ratio is the median of the rounds' own ratios: on a
  shared machine a pipe hop costs anywhere from 20 to 70 us from one minute
  to the next, and only a ratio taken within one round compares like with like.
  The host's CPU time per round trip is printed beside: the host polls for a
  quick answer rather than sleeping, which is what makes the hop cheap;
- a worker crash until the plugin is RUNNING again (restart by the supervisor),
  median; goal at most 250 ms. The crashes come once the spare worker is ready
  (a plugin that ran a while); crashes back to back, which find the spare
  still starting, are printed beside;
- a worker's start-up, cold and from the spare worker;
- host-side memory per isolated plugin (tracemalloc) and a worker's RSS.

``run.py`` runs :func:`measure` as its ``isolation`` worker; run alone, this
script prints the same figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PLUGIN = """\
import os

from mofa_kernel import AgentPlugin, PluginMetadata, PluginType


class Noop(AgentPlugin):
    metadata = PluginMetadata(id="noop", name="Noop", plugin_type=PluginType.TOOL)

    async def execute(self, input):
        if input == "crash":
            os._exit(1)
        return input
"""
PAYLOAD = "x" * 100
GOAL_RATIO = 1.5
GOAL_RESTART_MS = 250.0


def _echo(conn: Connection) -> None:
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(message)


def pipe_round_trips(conn: Connection, calls: int) -> float:
    """Seconds per round trip of ``PAYLOAD`` over a bare multiprocessing pipe."""
    send, recv = conn.send, conn.recv
    began = time.perf_counter()
    for _ in range(calls):
        send(PAYLOAD)
        recv()
    return (time.perf_counter() - began) / calls


async def isolated_round_trips(manager: Any, calls: int) -> float:
    execute = manager.execute
    began = time.perf_counter()
    for _ in range(calls):
        await execute("noop", PAYLOAD)
    return (time.perf_counter() - began) / calls


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _isolated(folder: Path) -> tuple[Any, Any]:
    """A manager serving the no-op plugin isolated, restarted after every crash."""
    from mofa_kernel import PluginManager
    from mofa_kernel._config import KernelSettings, PluginSection
    from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

    spec = WorkerSpec("noop", "mofabench_noop:Noop", sys_path=(str(folder), *sys.path))
    proxy = await IsolatedPlugin.spawn(spec)
    always = PluginSection(max_restarts=10_000, restart_window=1.0)
    manager = PluginManager(timeout=30.0, settings=KernelSettings(plugins={"noop": always}))
    manager.register(proxy)  # the manager restarts it by its [plugins.noop] policy
    await manager.load_all()
    await manager.start_all()
    return manager, proxy


async def _restart_times(folder: Path, crashes: int, *, warm: bool) -> list[float]:
    """Crash to RUNNING again, in ms; ``warm``: each crash waits for the spare worker to be ready
    (a plugin that crashes after running a while), else crashes follow each other at once."""
    from mofa_kernel import PluginExecutionError, PluginState
    from mofa_kernel._isolation._spawn import spares

    manager, _ = await _isolated(folder)
    times: list[float] = []
    try:
        for _ in range(crashes):
            back: asyncio.Future[float] = asyncio.get_running_loop().create_future()

            def running(event: object, back: asyncio.Future[float] = back) -> None:
                if getattr(event, "new_state", None) == PluginState.RUNNING and not back.done():
                    back.set_result(time.perf_counter())

            manager.add_listener(running)
            if warm:
                await spares.warm()
            began = time.perf_counter()
            with contextlib.suppress(PluginExecutionError):  # the crash is the point
                await manager.execute("noop", "crash")
            times.append((await asyncio.wait_for(back, 60) - began) * 1000)
            manager.remove_listener(running)
    finally:
        await manager.shutdown()
    return times


async def _startup_ms(starts: int) -> dict[str, float]:
    """A worker's start until its plugin's metadata is known: cold (a new interpreter) and
    from a warm spare."""
    from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec
    from mofa_kernel._isolation._spawn import set_spare_worker, spares

    spec = WorkerSpec("noop", "mofabench_noop:Noop")
    figures: dict[str, float] = {}
    for name, spare in (("cold", False), ("spare", True)):
        set_spare_worker(spare)
        times = []
        for _ in range(starts):
            await spares.warm()
            began = time.perf_counter()
            proxy = await IsolatedPlugin.spawn(spec)
            times.append((time.perf_counter() - began) * 1000)
            await proxy.shut_down()
        figures[f"start_{name}_ms"] = statistics.median(times)
    set_spare_worker(True)
    return figures


async def _memory(folder: Path, plugins: int) -> dict[str, float]:
    from mofa_kernel import PluginManager
    from mofa_kernel._isolation import IsolatedPlugin, WorkerSpec

    manager = PluginManager(timeout=30.0)
    # One of each first, so that imports and caches are not counted as per-plugin memory.
    warm = await IsolatedPlugin.spawn(WorkerSpec("noop", "mofabench_noop:Noop"))
    await warm.shut_down()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    proxies = []
    for index in range(plugins):
        spec = WorkerSpec("noop", "mofabench_noop:Noop")
        proxy = await IsolatedPlugin.spawn(spec)
        proxy._metadata = proxy.metadata.with_version(f"1.{index}")
        proxies.append(proxy)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    rss = [_rss_kib(proxy.worker_pid) for proxy in proxies]
    for proxy in proxies:
        await proxy.shut_down()
    await manager.shutdown()
    return {"host_bytes_per_plugin": grown / plugins, "worker_rss_kib": statistics.median(rss)}


def _placements() -> list[tuple[str, tuple[int, int] | None]]:
    """Where the two processes of each pair run while measured: the same for both pairs.

    Left to the scheduler, one pair may share a CPU (a hop is a cheap switch) while the
    other spans two (each hop wakes an idle CPU, several times dearer on a virtual
    machine): that alone made either side look twice as fast as the other from one run to
    the next. So the host is pinned to one CPU and the other process of each pair to
    another one ("cross-CPU", how the goal is judged), then to the same one ("same CPU").
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return [("unpinned", None)]
    return [("cross-CPU", (cpus[0], cpus[1])), ("same CPU", (cpus[0], cpus[0]))]


def _place(cpus: tuple[int, int] | None, *others: int | None) -> None:
    """Pin this process to ``cpus[0]`` and ``others`` to ``cpus[1]``; ``None``: unpin all."""
    if not hasattr(os, "sched_setaffinity"):
        return
    everywhere = os.sched_getaffinity(0) | set(range(os.cpu_count() or 1))
    host, other = ({cpus[0]}, {cpus[1]}) if cpus is not None else (everywhere, everywhere)
    os.sched_setaffinity(0, host)
    for pid in others:
        if pid is not None:
            with contextlib.suppress(OSError):  # a process that has ended
                os.sched_setaffinity(pid, other)


async def _measure(params: dict[str, Any]) -> dict[str, Any]:
    calls, rounds = params["calls"], params["rounds"]
    with tempfile.TemporaryDirectory(prefix="mofabench-iso-") as temporary:
        folder = Path(temporary)
        (folder / "mofabench_noop.py").write_text(PLUGIN, encoding="utf-8")
        sys.path.insert(0, str(folder))
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        child = context.Process(target=_echo, args=(theirs,), daemon=True)
        child.start()
        manager, proxy = await _isolated(folder)
        placements: dict[str, dict[str, list[float]]] = {}
        try:
            pipe_round_trips(ours, calls)  # warm-up of both
            await isolated_round_trips(manager, calls)
            for placement, cpus in _placements():
                _place(cpus, child.pid, proxy.worker_pid)
                rounds_of = placements[placement] = {
                    "pipe": [], "isolated": [], "ratios": [], "pipe_cpu": [], "isolated_cpu": []
                }  # fmt: skip
                for index in range(rounds):
                    # One round is a chunk of each, back to back, in alternating order: a busy
                    # moment of the machine hits both sides of a round alike, and the round's
                    # own ratio is what the goal is judged by (the median over the rounds).
                    for side in ("isolated", "pipe") if index % 2 else ("pipe", "isolated"):
                        cpu = time.process_time()
                        if side == "pipe":
                            took = pipe_round_trips(ours, calls)
                        else:
                            took = await isolated_round_trips(manager, calls)
                        rounds_of[f"{side}_cpu"].append((time.process_time() - cpu) / calls)
                        rounds_of[side].append(took)
                    rounds_of["ratios"].append(rounds_of["isolated"][-1] / rounds_of["pipe"][-1])
        finally:
            _place(None, child.pid, proxy.worker_pid)
            ours.send(None)
            child.join()
            await manager.shutdown()
        restarts = await _restart_times(folder, params["crashes"], warm=True)
        storm = await _restart_times(folder, params["crashes"], warm=False)
        memory = await _memory(folder, params["plugins"])
        startup = await _startup_ms(params["crashes"])
    judged = "cross-CPU" if "cross-CPU" in placements else next(iter(placements))
    chosen = placements[judged]
    ratios = chosen["ratios"]
    others = {
        name: statistics.median(theirs["ratios"])
        for name, theirs in placements.items()
        if name != judged
    }
    restart_ms = statistics.median(restarts)
    return {
        "pipe_us": statistics.median(chosen["pipe"]) * 1e6,
        "isolated_us": statistics.median(chosen["isolated"]) * 1e6,
        "pipe_host_cpu_us": statistics.median(chosen["pipe_cpu"]) * 1e6,
        "isolated_host_cpu_us": statistics.median(chosen["isolated_cpu"]) * 1e6,
        "ratio": statistics.median(ratios),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
        "rounds": rounds,
        "placement": judged,
        "other_placements": others,
        "ratio_goal": GOAL_RATIO,
        "restart_median_ms": restart_ms,
        "restart_max_ms": max(restarts),
        "restart_goal_ms": GOAL_RESTART_MS,
        "crashes": len(restarts),
        "storm_median_ms": statistics.median(storm),
        **memory,
        **startup,
    }


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """The figures, for ``run.py``'s ``isolation`` worker."""
    return asyncio.run(_measure(params))


FULL = {"calls": 500, "rounds": 40, "crashes": 21, "plugins": 5}
QUICK = {"calls": 100, "rounds": 4, "crashes": 3, "plugins": 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs")
    args = parser.parse_args()
    figures = measure(QUICK if args.quick else FULL)
    print(
        f"execute round trip: isolated {figures['isolated_us']:.1f} us, "
        f"bare multiprocessing.Pipe {figures['pipe_us']:.1f} us, "
        f"ratio {figures['ratio']:.2f}x (goal <= {GOAL_RATIO}x; {figures['placement']}: median "
        f"of {figures['rounds']} paired rounds, which ranged {figures['ratio_low']:.2f}x to "
        f"{figures['ratio_high']:.2f}x)"
        + "".join(f"; {name}: {ratio:.2f}x" for name, ratio in figures["other_placements"].items())
    )
    print(
        f"host CPU per round trip: isolated {figures['isolated_host_cpu_us']:.1f} us (it polls "
        f"for a quick answer), bare multiprocessing.Pipe {figures['pipe_host_cpu_us']:.1f} us"
    )
    print(
        f"crash until RUNNING again: median {figures['restart_median_ms']:.1f} ms "
        f"(max {figures['restart_max_ms']:.1f} ms, {figures['crashes']} crashes; "
        f"goal <= {GOAL_RESTART_MS:g} ms); crashes back to back: median "
        f"{figures['storm_median_ms']:.1f} ms"
    )
    print(
        f"worker start-up until the plugin's metadata is known: {figures['start_cold_ms']:.1f} ms "
        f"cold, {figures['start_spare_ms']:.1f} ms from the spare worker"
    )
    print(
        f"memory: host {figures['host_bytes_per_plugin'] / 1024:.1f} KiB per isolated plugin, "
        f"worker RSS {figures['worker_rss_kib'] / 1024:.1f} MiB"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
