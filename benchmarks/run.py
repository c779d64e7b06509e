"""mofa-kernel's benchmark suite: every performance goal beside its anchor, measured in one run.

    python benchmarks/run.py             # full sizes; writes docs/benchmarks.md
    python benchmarks/run.py --quick     # tiny sizes, to prove the suite works (what CI runs)
    python benchmarks/run.py --output /tmp/benchmarks.md --no-install

The suite writes its own installation (thousands of dist-info folders and a
few real plugins) into a temporary folder, puts it on ``PYTHONPATH`` of the
processes it measures, and compares mofa-kernel with the anchors in the same
run: the standard library's entry-point scan, stevedore's cache cold and warm
(installed into this environment with pip if missing, full mode only),
pluggy's ``load_setuptools_entrypoints``, a bare ``await``, ``asyncio.timeout``,
``wait_for``, ``asyncio.gather`` and a ``multiprocessing.Pipe`` ping-pong (see
``isolation.py``). Every figure is a median over repeated runs; anchors and
mofa-kernel are interleaved so that a busy moment of the machine hits both
alike. It prints the goals table and writes the Markdown
page, keeping the hot-reload benchmark's own section (between its
``hot-reload`` markers) as it finds it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = ROOT / "docs" / "benchmarks.md"
RELOAD_START = "<!-- hot-reload:start -->"
RELOAD_END = "<!-- hot-reload:end -->"
GROUP = "mofa.plugins"


@dataclass(frozen=True)
class Sizes:
    """How big and how often: full mode measures the goals, quick mode only proves it all runs."""

    distributions: int
    plugins: int
    process_runs: int
    repeats: int
    execute_calls: int
    lifecycle: tuple[int, int]
    lifecycle_repeats: tuple[int, int]
    memory_plugins: int
    reload_edits: int
    reload_restarts: int


FULL = Sizes(2000, 50, 21, 15, 200_000, (1000, 10_000), (9, 5), 1000, 10, 3)
QUICK = Sizes(200, 5, 3, 3, 5000, (100, 1000), (2, 1), 100, 3, 1)


@dataclass
class Goal:
    """One row of the goals table."""

    number: str
    what: str
    ours: str
    anchor: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Run:
    """Everything one run measured."""

    quick: bool
    sizes: Sizes
    machine: dict[str, str]
    goals: list[Goal] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    startup: list[tuple[str, str, str]] = field(default_factory=list)


# -- processes -----------------------------------------------------------------------------------


class Bench:
    """The temporary installation, and how to run processes over it."""

    def __init__(self, work: Path, sizes: Sizes) -> None:
        self.work = work
        self.sizes = sizes
        self.site = work / "site"
        self.cache = work / "cache"
        self.markers = work / "markers"
        self.quiet = work / "cwd"  # a working directory nothing writes to
        for folder in (self.cache, self.markers, self.quiet):
            folder.mkdir(parents=True, exist_ok=True)
        scripts = Path(sys.executable).parent
        script = scripts / ("mofa-kernel.exe" if os.name == "nt" else "mofa-kernel")
        #: How to start the command line: its console script, else ``python -m mofa_kernel``.
        self.cli = [str(script)] if script.exists() else ["-m", "mofa_kernel"]
        self.kernel = self.cli if script.exists() else [sys.executable, *self.cli]

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOFA_", "PYTHON"))}
        env["PYTHONPATH"] = str(self.site)
        env["MOFA_CACHE_DIR"] = str(self.cache)
        env["MOFABENCH_MARKERS"] = str(self.markers)
        env["XDG_CACHE_HOME"] = str(self.work / "xdg")
        env.update(extra)
        return env

    def run(self, argv: Sequence[str], **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            cwd=self.quiet,
            env=self.environ(**extra),
            check=False,
            timeout=600,
        )

    def worker(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        # Workers import plugins on purpose: they leave no marker.
        argv = [sys.executable, str(HERE / "run.py"), "--worker", name, json.dumps(params)]
        result = self.run(argv, MOFABENCH_MARKERS="")
        if result.returncode != 0:
            return {"error": f"worker {name} failed: {_last_line(result.stderr)}"}
        figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return figures

    def timed(self, commands: Mapping[str, Sequence[str]], runs: int) -> dict[str, float]:
        """Median wall time in ms of each command, the commands interleaved run after run."""
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, argv in commands.items():  # a first run of each fills the OS's caches
            self._check(name, self.run(argv))
        for _ in range(runs):
            for name, argv in commands.items():
                env = self.environ()
                began = time.perf_counter()
                subprocess.run(
                    list(argv), stdout=subprocess.DEVNULL, cwd=self.quiet, env=env, check=True
                )
                times[name].append((time.perf_counter() - began) * 1000)
        return {name: statistics.median(values) for name, values in times.items()}

    @staticmethod
    def _check(name: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed: {_last_line(result.stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _settle_ns() -> int:
    from mofa_kernel import _cache

    return _cache.SETTLE_NS


def wait_until_settled(*paths: Path) -> None:
    """Wait until nothing under ``paths`` changed for the cache's settling window.

    The cache stores a fingerprint only of an installation left alone that long
    (a file system's clock can be coarse); a just-written installation is
    rescanned each time, which is not what "warm" is meant to measure.
    """
    newest = 0
    for path in paths:
        if not path.exists():
            continue
        for item in [path, *path.iterdir()]:
            stat = item.stat()
            newest = max(newest, stat.st_mtime_ns, stat.st_ctime_ns)
    remaining = newest + _settle_ns() - time.time_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9 + 0.1)


# -- the measurements ----------------------------------------------------------------------------


def ensure_stevedore(install: bool) -> str | None:
    """stevedore's version, installing it with pip first if allowed; ``None`` when absent."""
    import importlib.util

    if importlib.util.find_spec("stevedore") is None and install:
        print("installing stevedore (an anchor only) with pip ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "stevedore"], check=False
        )
        import importlib

        importlib.invalidate_caches()
    if importlib.util.find_spec("stevedore") is None:
        return None
    from importlib.metadata import version

    return version("stevedore")


def warm_up(bench: Bench) -> str | None:
    """Load every plugin once (``plugins check``) and list twice; ``None`` if all went well."""
    for attempt in range(5):
        wait_until_settled(bench.site, Path(sys.executable).parent, *_site_packages())
        check = bench.run([*bench.kernel, "plugins", "check", "--json"])
        if check.returncode != 0:
            return f"plugins check failed: {_last_line(check.stderr)}"
        for _ in range(2):
            listed = bench.run([*bench.kernel, "plugins", "list", "--json"])
            if listed.returncode != 0:
                return f"plugins list failed: {_last_line(listed.stderr)}"
        rows = [r for r in json.loads(listed.stdout) if r["id"].startswith("bench-")]
        if len(rows) != bench.sizes.plugins or any(r["metadata"] is None for r in rows):
            return "plugins list does not show the metadata of every benchmark plugin"
        if _replayed(bench):
            return None
        print(f"  the installation is still changing (attempt {attempt + 1}); waiting", flush=True)
    return "the installation never settled, so the cache could not be warmed"


def _site_packages() -> list[Path]:
    import sysconfig

    return [Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")]


def _replayed(bench: Bench) -> bool:
    """Whether ``plugins list`` is answered from the cache: no argparse, no plugin imported."""
    for marker in bench.markers.iterdir():
        marker.unlink()
    probe = bench.run([sys.executable, "-X", "importtime", *bench.cli, "plugins", "list", "--json"])
    imported = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines()}
    return probe.returncode == 0 and "argparse" not in imported and not any(bench.markers.iterdir())


def measure_discovery(bench: Bench, run: Run) -> None:
    figures = bench.worker(
        "discovery", {"repeats": bench.sizes.repeats, "plugins": bench.sizes.plugins}
    )
    if "error" in figures:
        run.goals.append(_failed("1", "discovery, warm cache", figures["error"]))
        return
    stdlib = figures["stdlib_ms"]
    warm = figures["warm_file_ms"]
    dists = figures["distributions"]
    run.goals.append(
        Goal(
            "1",
            f"discovery, warm cache ({dists} distributions, {bench.sizes.plugins} plugins)",
            _ms(warm),
            f"stdlib `entry_points(group=...)` {_ms(stdlib)}",
            warm / stdlib,
            "<= 0.05x",
            warm / stdlib <= 0.05,
            "cache file read and validated, as a new process does",
        )
    )
    run.figures += [
        ("stdlib `importlib.metadata.entry_points(group=...)`", _ms(stdlib), "anchor"),
        ("mofa-kernel scan, warm cache, from the file", _ms(warm), "goal 1"),
        (
            "mofa-kernel scan, warm cache, again in the same process",
            _ms(figures["warm_memo_ms"]),
            "",
        ),
        ("mofa-kernel scan, no cache (`MOFA_NO_CACHE=1`)", _ms(figures["uncached_ms"]), ""),
    ]
    if figures.get("stevedore"):
        version = figures["stevedore"]
        run.figures += [
            (f"stevedore {version} cache, cold", _ms(figures["stevedore_cold_ms"]), "anchor"),
            (f"stevedore {version} cache, warm", _ms(figures["stevedore_warm_ms"]), "anchor"),
        ]
    else:
        run.figures.append(
            ("stevedore cache", "n/a", "not installed (quick mode installs nothing)")
        )
    run.figures += [
        (
            "pluggy `load_setuptools_entrypoints` (modules already imported)",
            _ms(figures["pluggy_load_ms"]),
            "anchor",
        ),
        (
            "mofa-kernel `PluginManager().discover()` (modules already imported)",
            _ms(figures["kernel_discover_ms"]),
            "warm cache; also checks each plugin's metadata token",
        ),
    ]


def measure_list(bench: Bench, run: Run, warm_error: str | None) -> None:
    what = "`mofa-kernel plugins list --json` process, warm cache"
    if warm_error is not None:
        run.goals.append(_failed("2", what, warm_error))
        return
    anchor = f"import importlib.metadata as m; m.entry_points(group={GROUP!r})"
    for marker in bench.markers.iterdir():
        marker.unlink()
    times = bench.timed(
        {
            "list": [*bench.kernel, "plugins", "list", "--json"],
            "entry_points": [sys.executable, "-c", anchor],
            "bare": [sys.executable, "-c", "pass"],
        },
        bench.sizes.process_runs,
    )
    if any(bench.markers.iterdir()):
        run.goals.append(_failed("2", what, "a plugin module was imported"))
        return
    ratio = times["list"] / times["entry_points"]
    note = "full metadata of every plugin, no plugin imported"
    if ratio > 0.4:  # say where the time goes
        _, modules = import_time(bench, ["-c", "import mofa_kernel"])
        eager = [name for name in HEAVY if name in modules]
        if eager:
            note += f"; `import mofa_kernel` alone imports {', '.join(eager)}"
    run.goals.append(
        Goal(
            "2",
            what,
            _ms(times["list"]),
            f"process calling only `entry_points(group=...)` {_ms(times['entry_points'])}",
            ratio,
            "<= 0.4x",
            ratio <= 0.4,
            note,
        )
    )
    run.figures += [
        ("`mofa-kernel plugins list --json` (process)", _ms(times["list"]), "goal 2"),
        ("`python -c 'entry_points(group=...)'` (process)", _ms(times["entry_points"]), "anchor"),
        ("`python -c pass` (process)", _ms(times["bare"]), "the interpreter alone"),
    ]


def measure_cold_list(bench: Bench, run: Run) -> None:
    from _cold import cold_list_times

    what = "`mofa-kernel plugins list --json` process, cold: no cache yet (first run after install)"
    for marker in bench.markers.iterdir():
        marker.unlink()
    times = cold_list_times(bench, bench.sizes.process_runs, GROUP)
    if any(bench.markers.iterdir()):
        run.goals.append(_failed("2b", what, "a plugin module was imported"))
        return
    ratio = times["cold_list"] / times["entry_points"]
    run.goals.append(
        Goal(
            "2b",
            what,
            _ms(times["cold_list"]),
            f"process calling only `entry_points(group=...)` {_ms(times['entry_points'])}",
            ratio,
            "<= 0.5x",
            ratio <= 0.5,
            "scans every distribution and stores the cache for the next command",
        )
    )
    run.figures.append(
        ("`mofa-kernel plugins list --json` (process, cold)", _ms(times["cold_list"]), "goal 2b")
    )


def measure_execute(bench: Bench, run: Run) -> None:
    figures = bench.worker(
        "execute", {"calls": bench.sizes.execute_calls, "repeats": bench.sizes.repeats}
    )
    what = "`PluginManager.execute`, timeout enforced"
    if "error" in figures:
        run.goals.append(_failed("3", what, figures["error"]))
        return
    bare, ours = figures["bare_ns"], figures["manager_ns"]
    ratio = ours / bare
    run.goals.append(
        Goal(
            "3",
            what,
            _us(ours),
            f"bare `await plugin.execute(x)` {_us(bare)}",
            ratio,
            "<= 5x",
            ratio <= 5 and figures["timeout_enforced"],
            "deadline checked to cut a slow plugin off"
            if figures["timeout_enforced"]
            else "DEADLINE NOT ENFORCED",
        )
    )
    run.figures += [
        ("bare `await plugin.execute(x)`", _us(bare), "anchor"),
        ("`await manager.execute(id, x)` with a 30 s deadline", _us(ours), "goal 3"),
        ("`asyncio.wait_for(plugin.execute(x), 30)`", _us(figures["wait_for_ns"]), "context"),
    ]
    if "asyncio_timeout_ns" in figures:
        run.figures.append(
            ("`async with asyncio.timeout(30)`", _us(figures["asyncio_timeout_ns"]), "context")
        )


def measure_lifecycle(bench: Bench, run: Run) -> None:
    small, large = bench.sizes.lifecycle
    figures = bench.worker(
        "lifecycle",
        {"sizes": [small, large], "repeats": list(bench.sizes.lifecycle_repeats)},
    )
    what = f"start_all + stop_all + unload_all, {small} plugins, 10 levels, events"
    if "error" in figures:
        run.goals.append(_failed("4", what, figures["error"]))
        run.goals.append(_failed("4b", f"the same with {large} plugins", figures["error"]))
        return
    cycle, gathers = figures[f"lifecycle_{small}_ms"], figures[f"gathers_{small}_ms"]
    big = figures[f"lifecycle_{large}_ms"]
    run.goals.append(
        Goal("4", what, _ms(cycle), f"five gathers of {small} no-op coroutines {_ms(gathers)}",
             cycle / gathers, "<= 2x", cycle / gathers <= 2)
    )  # fmt: skip
    scale = large / small
    run.goals.append(
        Goal("4b", f"the same with {large} plugins", _ms(big), f"{small} plugins {_ms(cycle)}",
             big / cycle, f"<= {1.2 * scale:g}x", big / cycle <= 1.2 * scale,
             "garbage collector on, as in real use")
    )  # fmt: skip
    run.figures += [
        (f"five gathers of {small} no-op coroutines", _ms(gathers), "anchor"),
        (f"lifecycle of {small} plugins", _ms(cycle), "goal 4"),
        (f"five gathers of {large} no-op coroutines", _ms(figures[f"gathers_{large}_ms"]), ""),
        (f"lifecycle of {large} plugins", _ms(big), "goal 4b"),
    ]


def measure_memory(bench: Bench, run: Run) -> None:
    figures = bench.worker("memory", {"plugins": bench.sizes.memory_plugins})
    what = f"framework memory per registered plugin ({bench.sizes.memory_plugins} plugins)"
    if "error" in figures:
        run.goals.append(_failed("5", what, figures["error"]))
        return
    per = figures["registered_bytes"]
    run.goals.append(
        Goal("5", what, _kib(per), "-", None, "<= 8 KiB", per <= 8 * 1024,
             f"{_kib(figures['running_bytes'])} once running (tracemalloc)")
    )  # fmt: skip
    run.figures += [
        ("framework memory per plugin, registered", _kib(per), "goal 5"),
        ("framework memory per plugin, running", _kib(figures["running_bytes"]), ""),
    ]


def measure_hot_reload(bench: Bench, run: Run) -> None:
    what = "hot reload: edit to new code serving (Immediate)"
    if not (HERE / "hot_reload_latency.py").exists():
        run.goals.append(Goal("6", what, "n/a", "-", None, "-", None, "benchmark not present"))
        return
    figures = bench.worker(
        "hot-reload",
        {"edits": bench.sizes.reload_edits, "restarts": bench.sizes.reload_restarts},
    )
    if "error" in figures:
        run.goals.append(_failed("6", what, figures["error"]))
        return
    latency, restart = figures["latency_ms"], figures["restart_ms"]
    goal = figures["goal_median_ms"]
    run.goals.append(
        Goal("6", what, _ms(latency), f"restarting the host process {_ms(restart)}",
             latency / restart, f"median <= {goal:g} ms", latency <= goal,
             f"quick run of hot_reload_latency.py ({figures['edits']} edits); see its section")
    )  # fmt: skip
    run.figures += [
        ("hot reload, edit to new code (median)", _ms(latency), "goal 6"),
        ("hot reload, of which the reload transaction", _ms(figures["transaction_ms"]), ""),
        ("restart the host process instead", _ms(restart), "anchor"),
    ]


def measure_isolation(bench: Bench, run: Run) -> None:
    figures = bench.worker("isolation", {"quick": run.quick})
    trip = "execute round trip of an isolated no-op plugin"
    restart = "isolated plugin: worker crash until RUNNING again (median)"
    if "error" in figures:
        run.goals.append(_failed("7", trip, figures["error"]))
        run.goals.append(_failed("7b", restart, figures["error"]))
        return
    ours, pipe, ratio = figures["isolated_us"], figures["pipe_us"], figures["ratio"]
    run.goals.append(
        Goal("7", trip, _us(ours * 1000), f"`multiprocessing.Pipe` ping-pong {_us(pipe * 1000)}",
             ratio, f"<= {figures['ratio_goal']:g}x", ratio <= figures["ratio_goal"],
             f"through `PluginManager.execute`, same 100-character payload; {figures['placement']}"
             f" (each pair's two processes pinned alike): median of {figures['rounds']} paired "
             f"rounds' ratios ({figures['ratio_low']:.2f}x to {figures['ratio_high']:.2f}x)"
             + "".join(f"; {name}: {ratio:.2f}x"
                       for name, ratio in figures["other_placements"].items()))
    )  # fmt: skip
    median, goal = figures["restart_median_ms"], figures["restart_goal_ms"]
    run.goals.append(
        Goal("7b", restart, _ms(median), "-", None, f"<= {goal:g} ms", median <= goal,
             f"{figures['crashes']} crashes, max {_ms(figures['restart_max_ms'])}; back to back "
             f"(spare worker still starting) {_ms(figures['storm_median_ms'])}")
    )  # fmt: skip
    run.figures += [
        ("bare `multiprocessing.Pipe` ping-pong", _us(pipe * 1000), "anchor"),
        ("isolated plugin, `manager.execute` round trip", _us(ours * 1000), "goal 7"),
        (
            "host CPU per round trip, bare `multiprocessing.Pipe`",
            _us(figures["pipe_host_cpu_us"] * 1000),
            "anchor",
        ),
        (
            "host CPU per round trip, isolated plugin (polls for the answer)",
            _us(figures["isolated_host_cpu_us"] * 1000),
            "",
        ),
        ("isolated plugin, crash until RUNNING again", _ms(median), "goal 7b"),
        ("isolated plugin, worker start-up, cold", _ms(figures["start_cold_ms"]), ""),
        ("isolated plugin, worker start-up, from the spare", _ms(figures["start_spare_ms"]), ""),
        ("isolated plugin, host memory", _kib(figures["host_bytes_per_plugin"]), ""),
        ("isolated plugin, worker RSS", f"{figures['worker_rss_kib'] / 1024:.1f} MiB", ""),
    ]


def _failed(number: str, what: str, error: str) -> Goal:
    return Goal(number, what, "-", "-", None, "-", False, f"not measured: {error}")


# -- start-up ------------------------------------------------------------------------------------


#: The imports worth naming in the start-up table.
HEAVY = ("attrs", "pluggy", "asyncio", "cattrs", "json", "argparse", "importlib.metadata")


def import_time(bench: Bench, argv: Sequence[str], **extra: str) -> tuple[float, set[str]]:
    """The sum of every module's own import time (``python -X importtime``) in ms, and the
    modules imported."""
    result = bench.run([sys.executable, "-X", "importtime", *argv], **extra)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {_last_line(result.stderr)}")
    total = 0
    modules: set[str] = set()
    for line in result.stderr.splitlines():
        own, _, rest = line.partition("import time:")[2].partition("|")
        if own.strip().isdigit():
            total += int(own)
            modules.add(rest.rpartition("|")[2].strip())
    return total / 1000, modules


def measure_startup(bench: Bench, run: Run) -> None:
    """What ``import mofa_kernel`` and the command line import, beyond the interpreter's start."""
    listing = [*bench.cli, "plugins", "list", "--json"]
    k = "import mofa_kernel as k"
    cases: list[tuple[str, list[str], dict[str, str]]] = [
        ("`import mofa_kernel`", ["-c", k], {}),
        ("... then `k.PluginMetadata` (the model)", ["-c", f"{k}; k.PluginMetadata"], {}),
        ("... then `k.PluginManager`", ["-c", f"{k}; k.PluginManager"], {}),
        ("... then `k.to_json`", ["-c", f"{k}; k.PluginManager; k.to_json"], {}),
        ("`mofa-kernel plugins list --json`, replayed from the cache", listing, {}),
        ("the same with `MOFA_NO_CACHE=1`", listing, {"MOFA_NO_CACHE": "1"}),
    ]
    baseline, before = import_time(bench, ["-c", "pass"])
    start = "the interpreter's own start (`python -c pass`)"
    run.startup.append((start, f"{baseline:.1f} ms", "subtracted from the rows below"))
    for label, argv, extra in cases:
        total, modules = import_time(bench, argv, **extra)
        named = [name for name in HEAVY if name in modules - before]
        run.startup.append(
            (label, f"{max(total - baseline, 0.0):.1f} ms", ", ".join(named) or "none of them")
        )


# -- the report ----------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 10 else f"{value:.1f} ms"


def _us(ns: float) -> str:
    return f"{ns / 1000:.3g} µs"


def _kib(value: float) -> str:
    return f"{value / 1024:.2f} KiB"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}x"


def _met(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        if names:
            cpu = names[0]
    except OSError:
        pass  # not Linux: platform.processor() it is
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load average at start": load,
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def goal_rows(run: Run) -> list[list[str]]:
    return [
        [g.number, g.what, g.ours, g.anchor, _ratio(g.ratio), g.target, _met(g.met), g.note]
        for g in run.goals
    ]


GOAL_HEADERS = ["#", "goal", "mofa-kernel", "anchor", "ratio", "target", "met", "note"]


def print_report(run: Run) -> None:
    rows = [GOAL_HEADERS, *goal_rows(run)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(GOAL_HEADERS))]
    print()
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print()
    for label, value, note in run.figures:
        print(f"  {label}: {value}" + (f"  ({note})" if note else ""))


def markdown(run: Run) -> str:
    sizes = run.sizes
    mode = "quick mode (tiny sizes; these figures prove nothing)" if run.quick else "full mode"
    lines = [
        "# Benchmarks",
        "",
        "How fast mofa-kernel is where users feel it, measured by the project's own",
        "harness beside the tools people would otherwise use, all in the same run.",
        "Every figure is a median over repeated runs; the ratios compare figures",
        "measured side by side, with mofa-kernel and its anchor interleaved.",
        "",
        "## The machine",
        "",
        *table(["", ""], [[key, value] for key, value in run.machine.items()] + [["mode", mode]]),
        "",
        f"The installation: {sizes.distributions} generated distributions (four in nine with",
        f"console scripts or other entry points), {sizes.plugins} of them with one plugin each,",
        "in a folder on `PYTHONPATH`, beside this environment's own packages.",
        "",
        "## Goals",
        "",
        *table(GOAL_HEADERS, goal_rows(run)),
        "",
        "Goal 2b is the first `plugins list --json` after `pip install`: no cache yet, so",
        "the process scans every distribution and stores what it found for the next",
        "command. The anchor pays for importing `importlib.metadata` (and `email`,",
        "`zipfile`, `pathlib`) and for a `Distribution` per metadata folder. `plugins",
        "list` reads the folders itself (with discovery's own scanner, its only one):",
        "one listing of each `sys.path` folder, one `open` of each",
        "`entry_points.txt`, the `METADATA` headers of the plugins' distributions only;",
        "it imports neither `importlib.metadata`, attrs, packaging nor argparse. With a",
        "configuration file, `MOFA_PLUGINS` or autoload switched off, the command reads",
        "the configuration first (the same scanner, plus attrs and cattrs).",
        "",
        "## Every figure",
        "",
        *table(["measure", "median", "note"], [list(f) for f in run.figures]),
        "",
        "## Start-up",
        "",
        "What starting costs: each figure is the sum of every module's own import",
        "time as `python -X importtime` reports it, beyond the interpreter's own",
        f"start, and the last column names which of {', '.join(HEAVY)} were imported.",
        "",
        *table(["what runs", "import time", "imported"], [list(s) for s in run.startup]),
        "",
        "## Reproduce",
        "",
        "```console",
        "$ python benchmarks/run.py            # full mode: writes this page",
        "$ python benchmarks/run.py --quick    # tiny sizes, as CI runs it",
        "```",
        "",
        "The harness needs nothing beyond mofa-kernel's own dependencies; in full",
        "mode it installs stevedore (an anchor only) into its environment with pip.",
        "The discovery cache is described in {doc}`configuration` and {doc}`cli`.",
        "",
    ]
    return "\n".join(lines)


#: The sections other benchmarks own (hot_reload_latency.py, dora_node.py): kept as they are.
KEPT_SECTIONS = ((RELOAD_START, RELOAD_END), ("<!-- dora:start -->", "<!-- dora:end -->"))


def write_page(text: str, path: Path) -> None:
    """Write ``text`` to ``path``, keeping the other benchmarks' sections that are already there."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    for first, last in KEPT_SECTIONS:
        if first in existing and last in existing:
            start = existing.index(first)
            end = existing.index(last) + len(last)
            text = text.rstrip("\n") + "\n\n" + existing[start:end] + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mofa-kernel's benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove the suite runs")
    parser.add_argument("--output", type=Path, default=DOCS, help="the page to write")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--no-install", action="store_true", help="never pip-install stevedore (an anchor)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(*args.worker)
    sizes = QUICK if args.quick else FULL
    ensure_stevedore(install=not (args.quick or args.no_install))
    run = Run(args.quick, sizes, machine())
    with tempfile.TemporaryDirectory(prefix="mofabench-") as temporary:
        bench = Bench(Path(temporary), sizes)
        print(f"writing {sizes.distributions} distributions into {bench.site} ...", flush=True)
        sys.path.insert(0, str(HERE))
        from _site import make_site

        make_site(bench.site, sizes.distributions, sizes.plugins)
        print("waiting for the installation to settle, then warming the cache ...", flush=True)
        warm_error = warm_up(bench)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("discovery", lambda: measure_discovery(bench, run)),
            ("plugins list", lambda: measure_list(bench, run, warm_error)),
            ("plugins list, cold", lambda: measure_cold_list(bench, run)),
            ("execute", lambda: measure_execute(bench, run)),
            ("lifecycle", lambda: measure_lifecycle(bench, run)),
            ("memory", lambda: measure_memory(bench, run)),
            ("hot reload", lambda: measure_hot_reload(bench, run)),
            ("process isolation", lambda: measure_isolation(bench, run)),
            ("start-up", lambda: measure_startup(bench, run)),
        ]
        for name, step in steps:
            print(f"measuring {name} ...", flush=True)
            step()
        shutil.rmtree(bench.work, ignore_errors=True)
    print_report(run)
    if not args.no_write:
        write_page(markdown(run), args.output)
        print(f"\nwritten to {args.output}")
    return 0


def _worker(name: str, params: str) -> int:
    from _workers import WORKERS

    if name == "discovery" and str(HERE) in sys.path:  # no distribution here: not scanned
        sys.path.remove(str(HERE))
    figures = WORKERS[name](json.loads(params))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
