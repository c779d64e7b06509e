"""Cold start: the first ``plugins list --json`` right after an install, with no cache yet.

Each timed run gets a discovery cache folder that does not exist yet, so the
process scans the whole installation, as the first command after ``pip
install`` does; the anchor is a process that only calls
``importlib.metadata.entry_points(group="mofa.plugins")``. The two are
interleaved run after run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["cold_list_times"]


class _Bench(Protocol):
    work: Path
    quiet: Path
    kernel: list[str]

    def environ(self, **extra: str) -> dict[str, str]: ...


def _timed(bench: _Bench, argv: Sequence[str], env: Mapping[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(list(argv), stdout=subprocess.DEVNULL, cwd=bench.quiet, env=env, check=True)
    return (time.perf_counter() - began) * 1000


def cold_list_times(bench: _Bench, runs: int, group: str) -> dict[str, float]:
    """Median wall time in ms of a cold ``plugins list --json`` and of the anchor process."""
    anchor = [
        sys.executable,
        "-c",
        f"import importlib.metadata as m; m.entry_points(group={group!r})",
    ]
    listing = [*bench.kernel, "plugins", "list", "--json"]
    times: dict[str, list[float]] = {"cold_list": [], "entry_points": []}
    for index in range(runs + 1):  # the first round fills the OS's caches, untimed
        cache = bench.work / "cold-caches" / str(index)
        assert not cache.exists()
        listed = _timed(bench, listing, bench.environ(MOFA_CACHE_DIR=str(cache)))
        scanned = _timed(bench, anchor, bench.environ())
        if index:
            times["cold_list"].append(listed)
            times["entry_points"].append(scanned)
    return {name: statistics.median(values) for name, values in times.items()}
