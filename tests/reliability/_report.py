"""What a run of tests/reliability found, and the generated parts of docs/reliability.md.

The :class:`Collector` lives for one pytest session (conftest.py makes it):
the matrix cells' outcomes come from their reports, and the fuzz, soak and
durability tests add their figures through the ``tally`` fixture. With
``MOFA_WRITE_RELIABILITY=1`` the session's end rewrites the regions of the
document between ``% BEGIN generated: NAME`` and ``% END generated: NAME``,
and only when every cell ran and every figure is there.
"""

from __future__ import annotations

import collections
import os
import platform
import re
from pathlib import Path
from typing import Any, Final

import attrs

from ._attacks import render_attacks
from ._faults import FAULT_TITLES, FAULTS, HOOKS, STYLES
from ._matrix import (
    CELLS,
    KNOWN_FAILURES,
    POLICIES,
    PROCESS_CELLS,
    PROCESS_FAULTS,
    PROCESS_HOOKS,
    Cell,
    KnownFailure,
)
from ._process_faults import ROWS as PROCESS_ROWS
from ._process_faults import render_process_faults

__all__ = [
    "DOC",
    "WRITE_ENV",
    "Collector",
    "expected_matrix_region",
    "read_region",
    "render_matrix",
    "replace_region",
    "run_mode",
]

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
#: Set to 1 to let a run rewrite the generated regions of :data:`DOC`.
WRITE_ENV: Final = "MOFA_WRITE_RELIABILITY"
#: The test that compares the document with the matrix _matrix.py expects.
DOC_CHECK: Final = "test_the_document_shows_the_expected_matrix"
#: The fuzz targets whose example counts the document requires.
FUZZ_TARGETS: Final = ("toml", "json", "cli")

_MARK: Final = {"passed": "✓", "xfailed": "✗"}
_STYLE_TITLES: Final = {"class": "Class-style plugins", "module": "Module-style plugins"}


def run_mode() -> str:
    """``quick`` (``MOFA_TEST_QUICK=1``, what CI runs), ``full`` (``MOFA_RELIABILITY_FULL=1``)
    or ``default``."""
    if os.environ.get("MOFA_RELIABILITY_FULL") == "1":
        return "full"
    if os.environ.get("MOFA_TEST_QUICK") == "1":
        return "quick"
    return "default"


def _outcome(report: Any) -> str | None:
    """The outcome a test report settles, or None for a phase that settles nothing."""
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return str(report.outcome)
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


@attrs.define(repr=False)
class Collector:
    """Outcomes and figures of one session of tests/reliability."""

    cells: dict[str, str] = attrs.field(factory=dict)
    modules: dict[str, collections.Counter[str]] = attrs.field(factory=dict)
    fuzz: collections.Counter[str] = attrs.field(factory=collections.Counter)
    skipped_fuzz: dict[str, str] = attrs.field(factory=dict)
    faults_survived: collections.Counter[str] = attrs.field(factory=collections.Counter)
    soak: dict[str, Any] = attrs.field(factory=dict)
    durability: dict[str, Any] = attrs.field(factory=dict)
    #: Outcomes of the cells of "Faults only a process can contain", by ``KEY-ISOLATION``.
    process_faults: dict[str, str] = attrs.field(factory=dict)
    #: Strict expected failures outside the matrix: test name -> reason.
    other_xfails: dict[str, str] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"<Collector: {len(self.cells)} cells, {sum(self.fuzz.values())} fuzz examples>"

    def record_report(self, nodeid: str, cell: object, report: Any) -> None:
        outcome = _outcome(report)
        if outcome is None:
            return
        settles = report.when == "call" or outcome != "passed"
        if isinstance(cell, Cell) and settles:
            self.cells[cell.id] = outcome
        elif isinstance(cell, str) and settles:
            self.process_faults[cell] = outcome
        elif outcome == "xfailed":
            self.other_xfails[nodeid.rsplit("/", 1)[-1]] = str(report.wasxfail)
        if DOC_CHECK in nodeid:
            return  # the document being out of date is what writing it fixes
        module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        if report.when == "call" or outcome in ("error", "skipped"):
            self.modules.setdefault(module, collections.Counter())[outcome] += 1

    def count_fuzz(self, target: str, examples: int = 1) -> None:
        self.fuzz[target] += examples

    def skip_fuzz(self, target: str, reason: str) -> None:
        self.skipped_fuzz[target] = reason

    def count_fault_survived(self, source: str, faults: int = 1) -> None:
        self.faults_survived[source] += faults

    def incomplete(self) -> list[str]:
        """Why this run cannot write the document (empty when it can)."""
        problems: list[str] = []
        missing = [cell.id for cell in (*CELLS, *PROCESS_CELLS) if cell.id not in self.cells]
        if missing:
            problems.append(f"{len(missing)} matrix cells did not run (e.g. {missing[0]})")
        bad = {cid: out for cid, out in self.cells.items() if out not in _MARK}
        problems += [f"matrix cell {cid}: {out}" for cid, out in sorted(bad.items())]
        ran = {cid: self.process_faults.get(cid) for r in PROCESS_ROWS for cid in r.cell_ids()}
        problems += [
            f"process-fault cell {cid}: {out or 'not run'}"
            for cid, out in ran.items()
            if out != "passed"
        ]
        problems += [f"no fuzz examples counted for {t}" for t in FUZZ_TARGETS if not self.fuzz[t]]
        if not self.soak:
            problems.append("the soak did not run")
        if not self.durability:
            problems.append("the durability test did not run")
        failing = {m: c for m, c in self.modules.items() if c["failed"] or c["error"]}
        problems += [f"{m}: {dict(c)}" for m, c in sorted(failing.items())]
        return problems


def _cell_text(cell: Cell, outcome: str | None, *, cancellation_is_fault: bool) -> str:
    mark = POLICIES[cell.policy(cancellation_is_fault=cancellation_is_fault)][0]
    failure = KNOWN_FAILURES.get(cell.id)
    if outcome == "passed":
        return f"✓ {mark}"
    if outcome == "xfailed" and failure is not None:
        return f"✗ {mark} {failure.tag}"
    return f"**{(outcome or 'not run').upper()}** {mark}"


def render_matrix(cells: dict[str, str], *, cancellation_is_fault: bool) -> str:
    """The matrix tables, legend and notes in MyST, from cell id -> outcome."""
    lines: list[str] = []
    header = "| hook | " + " | ".join(FAULT_TITLES[f] for f in FAULTS) + " |"
    rule = "|" + "---|" * (len(FAULTS) + 1)
    by_id = {cell.id: cell for cell in (*CELLS, *PROCESS_CELLS)}
    for style in STYLES:
        lines += [f"### {_STYLE_TITLES[style]}", "", header, rule]
        for hook in HOOKS:
            row = [
                _cell_text(
                    by_id[f"{style}-{hook}-{fault}"],
                    cells.get(f"{style}-{hook}-{fault}"),
                    cancellation_is_fault=cancellation_is_fault,
                )
                for fault in FAULTS
            ]
            lines.append(f"| `{hook}` | " + " | ".join(row) + " |")
        lines.append("")

    lines += [
        "### Class-style plugins in a worker process",
        "",
        'The same cells with the plugin in a worker of its own (`isolation = "process"`), '
        "imported there from an installed distribution, with restarts off so that each cell "
        "sees the fault itself; a hang also ends the worker. Every hook but `plugin_metadata` "
        "(read once, when the worker starts) and `stats` (answered from the figures the worker "
        "reported at `start` and `health_check`), against the two faults a worker handles "
        "differently from the host.",
        "",
        "| hook | " + " | ".join(FAULT_TITLES[f] for f in PROCESS_FAULTS) + " |",
        "|" + "---|" * (len(PROCESS_FAULTS) + 1),
    ]
    for hook in PROCESS_HOOKS:
        row = [
            _cell_text(
                by_id[f"class-{hook}-{fault}-process"],
                cells.get(f"class-{hook}-{fault}-process"),
                cancellation_is_fault=cancellation_is_fault,
            )
            for fault in PROCESS_FAULTS
        ]
        lines.append(f"| `{hook}` | " + " | ".join(row) + " |")
    lines.append("")
    every = (*CELLS, *PROCESS_CELLS)
    counts = collections.Counter(cells.get(cell.id, "not run") for cell in every)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    lines += [
        f"**{len(every)} cells ({len(CELLS)} inline, {len(PROCESS_CELLS)} in a worker "
        f"process): {summary}.** ✓ the cell passed; ✗ a strict expected "
        "failure, explained below (it turns red the day it passes, so this table cannot "
        "go stale). The letter is the policy the cell asserts:",
        "",
    ]
    for mark, text in POLICIES.values():
        lines += [f"{mark}", f": {text[0].upper()}{text[1:]}.", ""]

    failures: dict[str, tuple[KnownFailure, list[str]]] = {}
    for cell in (*CELLS, *PROCESS_CELLS):
        failure = KNOWN_FAILURES.get(cell.id)
        if failure is not None:
            failures.setdefault(failure.tag, (failure, []))[1].append(cell.id)
    if failures:
        lines += ["Expected failures, each with what was expected and what happens today:", ""]
        for tag, (failure, ids) in sorted(failures.items()):
            lines += [
                f"{tag} ({len(ids)} cell{'s' if len(ids) > 1 else ''}: "
                f"{', '.join(f'`{i}`' for i in ids)})",
                f": Expected: {failure.expected}. Today: {failure.actual}. "
                f"Where to fix: {failure.owner}.",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def expected_matrix_region() -> str:
    """The matrix as it reads when every cell behaves as _matrix.py expects (Python 3.11+)."""
    outcomes = {
        cell.id: "xfailed" if cell.id in KNOWN_FAILURES else "passed"
        for cell in (*CELLS, *PROCESS_CELLS)
    }
    return render_matrix(outcomes, cancellation_is_fault=True)


def _figure(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def render_figures(collector: Collector) -> str:
    """The counts of one full run of tests/reliability, as a MyST table."""
    cells = collections.Counter(collector.cells.values())
    targets = (*FUZZ_TARGETS, "new-plugin")
    fuzz_total = sum(collector.fuzz[t] for t in targets)
    fuzz_parts = ", ".join(f"{t} {_figure(collector.fuzz[t])}" for t in targets)
    skipped = "; ".join(f"{t}: {why}" for t, why in sorted(collector.skipped_fuzz.items()))
    soak, dur = collector.soak, collector.durability
    survived = sum(collector.faults_survived.values())
    survived_parts = ", ".join(f"{k} {v:,}" for k, v in sorted(collector.faults_survived.items()))
    trust = collector.modules.get("test_trust_controls.py", collections.Counter())
    rows = [
        ("run", f"{run_mode()} mode, Python {platform.python_version()}"),
        (
            "matrix cells",
            f"{len(CELLS) + len(PROCESS_CELLS)} ({len(PROCESS_CELLS)} in worker processes): "
            f"{cells['passed']} passed, {cells['xfailed']} expected failures (strict), "
            f"{len(CELLS) + len(PROCESS_CELLS) - cells['passed'] - cells['xfailed']} otherwise",
        ),
        ("faults survived", f"{survived:,} ({survived_parts})"),
        (
            "fuzz examples run",
            f"{fuzz_total:,} ({fuzz_parts})" + (f"; not run: {skipped}" if skipped else ""),
        ),
        (
            "soak calls made",
            f"{soak['calls']:,} executes over {soak['plugins']} plugins in {soak['rounds']} "
            f"rounds: {soak['answered']:,} answered, {soak['refused']:,} refused with a "
            f"documented error, {soak['lost']} lost, {soak['duplicated']} duplicated",
        ),
        (
            "soak lifecycle churn",
            f"{soak['transitions']:,} pause/resume/stop/start, {soak['reloads']:,} reloads, "
            f"{soak['faults']:,} plugin faults repaired, "
            f"longest round {soak['longest_round']:.2f} s",
        ),
        (
            "soak memory",
            f"median growth {soak['memory_per_round_kib']:+,.1f} KiB per round, "
            f"{soak['memory_growth_kib']:+,.1f} KiB in all between round 2 and the last "
            f"(traced by tracemalloc; limit {soak['memory_limit_kib']:,} KiB per round)",
        ),
        (
            "soak events",
            f"{soak['events']:,} emitted; a slow subscriber of size {soak['slow_maxsize']} "
            f"dropped {soak['slow_dropped']:,} and missed exactly as many; a fast one dropped "
            f"{soak['fast_dropped']}",
        ),
        (
            "durability",
            f"{dur['acknowledged']:,} acknowledged writes before SIGKILL, "
            f"{dur['present']:,} present after restart",
        ),
        ("trust checks", f"{trust['passed']} passed, {trust['failed']} failed"),
    ]
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    by_reason: dict[str, list[str]] = {}
    for test, reason in sorted(collector.other_xfails.items()):
        by_reason.setdefault(reason, []).append(test.split("[", 1)[0])
    if by_reason:
        lines += ["", "Strict expected failures outside the matrix, each with its reason:", ""]
        for reason, tests in by_reason.items():
            names = ", ".join(f"`{name}`" for name in dict.fromkeys(tests))
            count = f" ({len(tests)} cases)" if len(tests) > 1 else ""
            lines.append(f"- {names}{count}: {reason}")
    return "\n".join(lines) + "\n"


def _region_pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"^% BEGIN generated: {re.escape(name)}\n(.*?)^% END generated: {re.escape(name)}$",
        re.MULTILINE | re.DOTALL,
    )


def read_region(text: str, name: str) -> str:
    """The generated content of region ``name`` (without the surrounding blank lines)."""
    match = _region_pattern(name).search(text)
    if match is None:
        raise KeyError(f"no generated region {name!r}")
    return match.group(1).strip("\n") + "\n"


def replace_region(text: str, name: str, content: str) -> str:
    """``text`` with region ``name`` holding ``content``."""
    pattern = _region_pattern(name)
    if pattern.search(text) is None:
        raise KeyError(f"no generated region {name!r}")
    begin, end = f"% BEGIN generated: {name}", f"% END generated: {name}"
    return pattern.sub(lambda _: f"{begin}\n\n{content.strip()}\n\n{end}", text, count=1)


def write_document(collector: Collector, *, cancellation_is_fault: bool) -> None:
    """Rewrite the generated regions of :data:`DOC` from this run."""
    text = DOC.read_text(encoding="utf-8")
    text = replace_region(
        text,
        "matrix",
        render_matrix(collector.cells, cancellation_is_fault=cancellation_is_fault),
    )
    text = replace_region(text, "figures", render_figures(collector))
    text = replace_region(text, "attacks", render_attacks())
    text = replace_region(text, "process-faults", render_process_faults(collector.process_faults))
    DOC.write_text(text, encoding="utf-8")
