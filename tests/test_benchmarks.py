"""The benchmark harness runs end to end in quick mode: every goal reported, the page written.

Only that it works is checked here; its figures are for docs/benchmarks.md
(written by a full run), never asserted on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
GOALS = ["1", "2", "2b", "3", "4", "4b", "5", "6", "7", "7b"]
KEPT = """\
<!-- hot-reload:start -->
## Hot reload latency

A section another benchmark owns: kept as it is.
<!-- hot-reload:end -->"""

pytestmark = pytest.mark.skipif(not HARNESS.exists(), reason="benchmarks/ is not shipped here")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    page = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    page.write_text(f"# Old page\n\nold figures\n\n{KEPT}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOFA_")}
    result = subprocess.run(
        [sys.executable, str(HARNESS), "--quick", "--no-install", "--output", str(page)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, page.read_text(encoding="utf-8")


def test_every_goal_is_printed_with_its_anchor_and_ratio(quick_run: tuple[str, str]) -> None:
    printed, _ = quick_run
    header = next(line for line in printed.splitlines() if line.startswith("#   goal"))
    assert all(word in header for word in ("mofa-kernel", "anchor", "ratio", "target", "met"))
    rows = {line.split()[0]: line for line in printed.splitlines() if line[:1].isdigit()}
    assert sorted(rows) == sorted(GOALS)
    for number in GOALS:
        assert "not measured" not in rows[number], rows[number]
    assert re.search(r"stdlib `entry_points\(group=\.\.\.\)` [\d.]+ ms", rows["1"])
    assert re.search(r"bare `await plugin.execute\(x\)`", rows["3"])
    assert re.search(r"five gathers of \d+ no-op coroutines", rows["4"])


def test_the_page_is_written_where_asked_and_keeps_the_hot_reload_section(
    quick_run: tuple[str, str],
) -> None:
    _, page = quick_run
    assert page.startswith("# Benchmarks\n")
    assert "old figures" not in page
    assert page.count(KEPT) == 1
    for title in ("## The machine", "## Goals", "## Every figure", "## Start-up", "## Reproduce"):
        assert title in page
    goals = page.split("## Goals", 1)[1].split("##", 1)[0]
    numbers = [line.split("|")[1].strip() for line in goals.splitlines() if line.startswith("| ")]
    assert numbers[1:] == GOALS  # after the header row
    assert "python benchmarks/run.py" in page
    assert "quick mode" in page
