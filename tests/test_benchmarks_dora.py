"""benchmarks/dora_node.py runs end to end in quick mode and writes only its own section.

Its figures are for docs/benchmarks.md (written by a full run), never asserted on;
only that nothing was lost, answered twice or answered wrong.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "dora_node.py"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HARNESS.exists(), reason="benchmarks/ is not shipped here"),
]
pytest.importorskip("dora.testing", reason="dora-rs 1.x (Python 3.11 and newer) is not installed")


def test_the_quick_run_prints_both_goals_and_keeps_the_rest_of_the_page(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "dora").exists() and shutil.which("dora") is None:
        pytest.skip("the dora command (dora-rs-cli) is not installed")
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nother figures\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOFA_")}
    result = subprocess.run(
        [sys.executable, str(HARNESS), "--quick", "--output", str(page)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"round trip p50, one in flight .* \| [\d.]+x \| <= 1.25x \|", result.stdout)
    assert re.search(r"16 in flight: throughput .* \| [\d.]+x \| >= 0.8x", result.stdout)
    assert "| all rounds: lost / answered twice / wrong | 0 / 0 / 0 | 0 / 0 / 0 |" in result.stdout
    # The method is stated with the figures: interleaved rounds, medians of their ratios.
    assert "parts that take turns between the two nodes" in result.stdout
    assert "the ratios shown are the medians of those" in result.stdout
    assert re.search(r"Each round's own ratios: round trip [\d.]+x, [\d.]+x;", result.stdout)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nother figures\n\n<!-- dora:start -->\n")
    assert text.rstrip().endswith("<!-- dora:end -->")
