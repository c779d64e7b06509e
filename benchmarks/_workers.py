"""The in-process measurements, each run by ``run.py --worker NAME`` in a process of its own.

Every worker returns a dict of plain figures (times in milliseconds or
nanoseconds, as their keys say), which ``run.py`` prints as JSON. A worker
that finds a precondition unmet (the cache not stored yet, a plugin that did
not start) says so in an ``"error"`` key instead of reporting a figure.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["WORKERS"]

GROUP = "mofa.plugins"
Figures = dict[str, Any]


def _median_ms(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


# -- goal 1: discovery ---------------------------------------------------------------------------


def discovery(params: dict[str, Any]) -> Figures:
    """The stdlib scan, stevedore cold and warm, pluggy, and mofa-kernel cold and warm."""
    import importlib.metadata

    from mofa_kernel import _cache
    from mofa_kernel._discovery import scan_with_problems

    repeats = params["repeats"]
    first = scan_with_problems()
    if first.fingerprint is None:
        return {"error": "the installation has not settled: the scan was not stored"}
    plugins = params["plugins"]
    found = sum(1 for s in first.sources if s.plugin_id.startswith("bench-"))
    if found != plugins:
        return {"error": f"{found} benchmark plugins discovered, {plugins} expected"}
    figures: Figures = {"distributions": len(list(importlib.metadata.distributions()))}
    figures["stdlib_ms"] = _median_ms(lambda: importlib.metadata.entry_points(group=GROUP), repeats)

    def from_file() -> None:
        _cache.forget_scans()
        result = scan_with_problems()
        assert result.fingerprint is not None, "a warm scan missed the cache"

    figures["warm_file_ms"] = _median_ms(from_file, repeats * 5)
    figures["warm_memo_ms"] = _median_ms(scan_with_problems, repeats * 5)
    os.environ[_cache.ENV_NO_CACHE] = "1"
    try:
        figures["uncached_ms"] = _median_ms(scan_with_problems, repeats)
    finally:
        del os.environ[_cache.ENV_NO_CACHE]
    figures.update(_stevedore(repeats))
    figures.update(_loading(repeats))
    return figures


def _stevedore(repeats: int) -> Figures:
    try:
        from stevedore import _cache as stevedore_cache
    except ImportError:
        return {"stevedore": None}
    import shutil
    from importlib.metadata import version

    folder = tempfile.mkdtemp(prefix="mofabench-stevedore-")

    def cold() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        stevedore_cache.Cache(folder).get_group_all(GROUP)

    def warm() -> None:
        stevedore_cache.Cache(folder).get_group_all(GROUP)

    try:
        figures = {
            "stevedore": version("stevedore"),
            "stevedore_cold_ms": _median_ms(cold, repeats),
        }
        cold()
        figures["stevedore_warm_ms"] = _median_ms(warm, repeats * 5)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _loading(repeats: int) -> Figures:
    """Discover and register every plugin (their modules already imported after the first round)."""
    import pluggy

    from mofa_kernel import PluginManager

    def with_pluggy() -> None:
        pluggy.PluginManager("mofa").load_setuptools_entrypoints(GROUP)

    def with_kernel() -> None:
        report = PluginManager().discover()
        assert not report.errors, report.errors

    return {
        "pluggy_load_ms": _median_ms(with_pluggy, repeats),
        "kernel_discover_ms": _median_ms(with_kernel, repeats),
    }


# -- goal 3: execute ----------------------------------------------------------------------------


def _noop_plugin_class() -> type:
    from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

    class Noop(AgentPlugin):
        def __init__(self, plugin_id: str = "noop", dependencies: tuple[str, ...] = ()) -> None:
            self._metadata = PluginMetadata(
                plugin_id, plugin_id, PluginType.TOOL, dependencies=dependencies
            )

        @property
        def metadata(self) -> PluginMetadata:
            return self._metadata

        async def execute(self, input: str) -> str:
            return input

    return Noop


def execute(params: dict[str, Any]) -> Figures:
    """ns per call: bare await, the manager's execute, asyncio.timeout, wait_for."""
    return asyncio.run(_execute(params["calls"], params["repeats"]))


async def _execute(calls: int, repeats: int) -> Figures:
    from mofa_kernel import PluginManager, PluginTimeoutError

    noop_class = _noop_plugin_class()
    manager = PluginManager(timeout=30.0)
    plugin = noop_class()
    manager.register(plugin)
    report = await manager.start_all()
    if not report.ok:
        return {"error": f"the no-op plugin did not start: {report.errors()}"}

    async def bare(n: int) -> None:
        for _ in range(n):
            await plugin.execute("x")

    async def managed(n: int) -> None:
        run = manager.execute
        for _ in range(n):
            await run("noop", "x")

    async def with_timeout(n: int) -> None:
        for _ in range(n):
            async with asyncio.timeout(30):  # type: ignore[attr-defined]
                await plugin.execute("x")

    async def with_wait_for(n: int) -> None:
        for _ in range(n):
            await asyncio.wait_for(plugin.execute("x"), 30)

    variants: dict[str, tuple[Callable[[int], Awaitable[None]], int]] = {
        "bare_ns": (bare, calls),
        "manager_ns": (managed, calls),
        "wait_for_ns": (with_wait_for, max(1, calls // 10)),
    }
    if sys.version_info >= (3, 11):
        variants["asyncio_timeout_ns"] = (with_timeout, max(1, calls // 4))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for function, n in variants.values():
        await function(max(1, n // 10))  # warm up
    for _ in range(repeats):  # interleaved, so that a slow moment hits every variant alike
        for name, (function, n) in variants.items():
            began = time.perf_counter()
            await function(n)
            samples[name].append((time.perf_counter() - began) / n * 1e9)
    await manager.shutdown()
    figures: Figures = {name: statistics.median(values) for name, values in samples.items()}
    figures["timeout_enforced"] = await _timeout_is_enforced(PluginManager, PluginTimeoutError)
    return figures


async def _timeout_is_enforced(manager_class: Any, timeout_error: type[BaseException]) -> bool:
    """The same code path, proven to cut a plugin off at its deadline."""
    from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

    class Sleeper(AgentPlugin):
        metadata = PluginMetadata("sleeper", "Sleeper", PluginType.TOOL)

        async def execute(self, input: str) -> str:
            await asyncio.sleep(5)
            return input

    async with manager_class(timeout=0.05) as manager:
        manager.register(Sleeper())
        await manager.start_all()
        began = time.perf_counter()
        try:
            await manager.execute("sleeper", "x")
        except timeout_error:
            return time.perf_counter() - began < 1.0
    return False


# -- goal 4: lifecycle ---------------------------------------------------------------------------


def _graph(noop_class: type, n: int, levels: int = 10) -> list[Any]:
    """``n`` no-op plugins in ``levels`` levels; each depends on two of the level below."""
    per = max(1, n // levels)
    plugins = []
    for index in range(n):
        level = index // per
        deps: tuple[str, ...] = ()
        if level > 0:
            below = (level - 1) * per
            deps = (f"p{below + index % per}", f"p{below + (index + 1) % per}")
        plugins.append(noop_class(f"p{index}", deps))
    return plugins


def lifecycle(params: dict[str, Any]) -> Figures:
    """ms for start_all + stop_all + unload_all of n plugins, and for five gathers of n."""
    return asyncio.run(_lifecycle(params["sizes"], params["repeats"]))


async def _lifecycle(sizes: list[int], repeats: list[int]) -> Figures:
    from mofa_kernel import PluginManager, PluginState

    noop_class = _noop_plugin_class()
    gathers: dict[int, list[float]] = {n: [] for n in sizes}
    cycles: dict[int, list[float]] = {n: [] for n in sizes}

    async def noop() -> None:
        return None

    # The sizes take turns, round after round, so that a busy moment of the machine hits
    # both alike (their ratio is goal 4b).
    for round_ in range(max(repeats)):
        for n, rounds in zip(sizes, repeats, strict=True):
            if round_ >= rounds:
                continue
            gc.collect()
            began = time.perf_counter()
            for _ in range(5):
                await asyncio.gather(*(noop() for _ in range(n)))
            gathers[n].append(time.perf_counter() - began)

            manager = PluginManager()
            events = 0

            def count(event: object) -> None:
                nonlocal events
                events += 1

            manager.add_listener(count)
            for plugin in _graph(noop_class, n):
                manager.register(plugin)
            gc.collect()
            began = time.perf_counter()
            started = await manager.start_all()
            stopped = await manager.stop_all()
            unloaded = await manager.unload_all()
            cycles[n].append(time.perf_counter() - began)
            if not (started.ok and stopped.ok and unloaded.ok):
                return {"error": f"the lifecycle of {n} plugins failed: {started.errors()[:3]}"}
            if any(manager.state(pid) != PluginState.UNLOADED for pid in manager.plugin_ids()):
                return {"error": "a plugin did not end unloaded"}
            # Five state changes each (Loading, Loaded, Running, Loaded, Unloaded), plus
            # PluginLoaded and PluginUnloaded.
            if events != 7 * n:
                return {"error": f"{events} events for {n} plugins, {7 * n} expected"}
            await manager.shutdown()  # stops its loop monitor, so that the manager can go
            del manager
    figures: Figures = {}
    for n in sizes:
        figures[f"gathers_{n}_ms"] = statistics.median(gathers[n]) * 1000
        figures[f"lifecycle_{n}_ms"] = statistics.median(cycles[n]) * 1000
    return figures


# -- goal 5: memory ------------------------------------------------------------------------------


def memory(params: dict[str, Any]) -> Figures:
    """Bytes the framework allocates per plugin: registered, and running."""
    return asyncio.run(_memory(params["plugins"]))


async def _memory(n: int) -> Figures:
    from mofa_kernel import PluginManager

    noop_class = _noop_plugin_class()
    plugins = _graph(noop_class, n)  # the plugins' own objects are not the framework's
    manager = PluginManager()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for plugin in plugins:
        manager.register(plugin)
    gc.collect()
    registered = tracemalloc.take_snapshot()
    report = await manager.start_all()
    gc.collect()
    running = tracemalloc.take_snapshot()
    tracemalloc.stop()
    await manager.shutdown()
    if not report.ok:
        return {"error": f"start_all failed: {report.errors()[:3]}"}

    def grown(later: tracemalloc.Snapshot) -> int:
        return sum(stat.size_diff for stat in later.compare_to(before, "filename"))

    return {
        "plugins": n,
        "registered_bytes": grown(registered) / n,
        "running_bytes": grown(running) / n,
    }


# -- goal 6: hot reload --------------------------------------------------------------------------


def hot_reload(params: dict[str, Any]) -> Figures:
    """The hot-reload benchmark's own measurements (benchmarks/hot_reload_latency.py), quick."""
    try:
        import hot_reload_latency as bench
    except ImportError:
        return {"error": "benchmarks/hot_reload_latency.py is not there"}
    with tempfile.TemporaryDirectory(prefix="mofabench-reload-") as temporary:
        folder = Path(temporary)
        (folder / "bench_plugin").mkdir()
        (folder / "bench_plugin" / "__init__.py").write_text(
            bench.PLUGIN.format(version=1), encoding="utf-8"
        )
        latencies, durations = asyncio.run(bench.measure_reloads(folder, params["edits"]))
        restarts = bench.measure_restarts(folder, params["restarts"])
    return {
        "edits": len(latencies),
        "latency_ms": statistics.median(latencies),
        "latency_p95_ms": bench.percentile(latencies, 0.95),
        "transaction_ms": statistics.median(durations),
        "restart_ms": statistics.median(restarts),
        "goal_median_ms": bench.GOAL_MEDIAN_MS,
    }


def isolation(params: dict[str, Any]) -> Figures:
    """Process isolation's costs (benchmarks/isolation.py)."""
    import isolation as bench

    return bench.measure(bench.QUICK if params["quick"] else bench.FULL)


WORKERS: dict[str, Callable[[dict[str, Any]], Figures]] = {
    "discovery": discovery,
    "execute": execute,
    "lifecycle": lifecycle,
    "memory": memory,
    "hot-reload": hot_reload,
    "isolation": isolation,
}
