"""The faults only a process can contain, and what each does to a host inline and isolated.

Each :class:`ProcessFault` is one row of the table "Faults only a process
can contain" in docs/reliability.md (region ``process-faults``). Both of its
cells are run by test_process_faults.py: a real host process with the faulty
plugin installed beside an inline bystander, once with the plugin inline and
once with ``isolation = "process"``; the table shows each run's outcome as
the matrix does (✓, or the outcome in capitals). A row also names the deeper
tests of its process cell (tests/test_isolation.py), and test_process_faults.py
checks that the page shows exactly this table and that every test named here
exists. An inline cell too dangerous to run on a shared machine has
``inline_not_run`` saying why, and the table says it was not run.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["ISOLATIONS", "ROWS", "RUNNER", "ProcessFault", "all_passed", "render_process_faults"]

ISOLATIONS: Final = ("inline", "process")
#: The module whose parametrized test runs every cell.
RUNNER: Final = "tests/reliability/test_process_faults.py::test_fault_in_a_host"
_ISO = "tests/test_isolation.py"


@attrs.frozen
class ProcessFault:
    """One fault, what it does to the host with the plugin inline and in a worker process."""

    #: The runner's name for it (the cell ids are ``KEY-inline`` and ``KEY-process``).
    key: str
    fault: str
    inline: str
    process: str
    #: ``"path::test_name"`` of further tests that prove the process cell.
    process_tests: tuple[str, ...] = ()
    #: Why the inline cell is not run (it is then described, not shown).
    inline_not_run: str | None = None

    def cell_id(self, isolation: str) -> str:
        return f"{self.key}-{isolation}"

    def cell_ids(self) -> tuple[str, ...]:
        """The cells the runner runs for this row."""
        return tuple(
            self.cell_id(isolation)
            for isolation in ISOLATIONS
            if isolation == "process" or self.inline_not_run is None
        )


ROWS: Final = (
    ProcessFault(
        "exit",
        "`os._exit(1)` in `execute`",
        "the host is gone, exit 1, nothing printed",
        "C: `worker exited with code 1`, restarted by policy",
        (
            f"{_ISO}::test_a_dying_worker_costs_only_its_plugin",
            f"{_ISO}::test_restarts_follow_the_policy_then_the_plugin_stays_down",
        ),
    ),
    ProcessFault(
        "segv",
        "a segfault (`ctypes.string_at(0)`)",
        "the host is gone, killed by SIGSEGV (exit 139 in a shell)",
        "C: `worker killed by SIGSEGV`, restarted by policy",
        (f"{_ISO}::test_a_dying_worker_costs_only_its_plugin",),
    ),
    ProcessFault(
        "sys.exit",
        "`sys.exit(4)` in `execute`",
        "C: `execute failed: SystemExit: 4 (...)`",
        "C: the same words; the worker lives on until `unload`",
        (f"{_ISO}::test_a_caught_sys_exit_fails_the_call_and_the_worker_lives_on",),
    ),
    ProcessFault(
        "spin",
        "`while True: pass` in `execute`",
        "the host's event loop is held; no deadline can fire",
        "C: `execute timed out after 1s`; the worker's process group is ended",
        (f"{_ISO}::test_a_loop_that_never_yields_is_cut_off_at_its_deadline",),
    ),
    ProcessFault(
        "spin-start",
        "`while True: pass` in a lifecycle hook (`start` here)",
        "as above: the host is held in `start_all()`",
        "C: `start timed out after 1s`; the same for each of `load` ... `unload`",
        (f"{_ISO}::test_a_hang_in_a_lifecycle_hook_ends_the_worker",),
    ),
    ProcessFault(
        "hog",
        "unbounded allocation",
        "the OOM killer may take the host",
        "C under `memory_limit`: `MemoryError` fails the call, and memory the plugin keeps "
        "stays in the worker; a worker that cannot go on ends with `worker exceeded its "
        "memory limit (256 MiB)`",
        (f"{_ISO}::test_memory_under_the_cap", f"{_ISO}::test_a_worker_out_of_memory_says_so"),
        inline_not_run="it would take the memory of the machine the suite runs on",
    ),
    ProcessFault(
        "leak",
        "a thread and a child process left running",
        "the interpreter waits for the thread at exit; the child outlives the host",
        "gone after `unload` (and after a crash): the whole process group is ended",
        (
            f"{_ISO}::test_unload_ends_the_worker_its_threads_and_its_children",
            f"{_ISO}::test_a_crash_ends_what_the_worker_started",
        ),
    ),
    ProcessFault(
        "cancel",
        "a call cancelled by its caller",
        "cancelled",
        "cancelled inside the worker, which lives on",
        (f"{_ISO}::test_a_cancelled_call_is_cancelled_in_the_worker_which_lives_on",),
    ),
)

_MARK: Final = {"passed": "✓"}


def _cell(row: ProcessFault, isolation: str, outcomes: dict[str, str]) -> str:
    text = row.inline if isolation == "inline" else row.process
    if isolation == "inline" and row.inline_not_run is not None:
        return f"not run ({row.inline_not_run}): {text}"
    outcome = outcomes.get(row.cell_id(isolation))
    mark = _MARK.get(outcome or "", f"**{(outcome or 'not run').upper()}**")
    return f"{mark} {text}"


def render_process_faults(outcomes: dict[str, str]) -> str:
    """The table, from cell id -> outcome of the runner's cases."""
    lines = ["| fault | inline | process | tests |", "|---|---|---|---|"]
    for row in ROWS:
        runner = RUNNER.rpartition("::")[2]
        tests = [f"`{runner}[{row.key}-*]`"]
        tests += [f"`{test.rpartition('::')[2]}`" for test in row.process_tests]
        cells = [_cell(row, isolation, outcomes) for isolation in ISOLATIONS]
        lines.append(f"| {row.fault} | {cells[0]} | {cells[1]} | {'<br>'.join(tests)} |")
    ran = [cell for row in ROWS for cell in row.cell_ids()]
    passed = sum(1 for cell in ran if outcomes.get(cell) == "passed")
    lines += [
        "",
        f"**{len(ran)} cells run: {passed} passed.** ✓ the cell's run in a host process "
        "showed what it says; C: contained, as in the matrix above.",
    ]
    return "\n".join(lines) + "\n"


def all_passed() -> dict[str, str]:
    """The outcomes of a run in which every cell passed (what the page must show)."""
    return {cell: "passed" for row in ROWS for cell in row.cell_ids()}
