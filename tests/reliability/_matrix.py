"""The cells of the fault matrix and, for each, the behaviour the kernel promises.

Most cells are *contained*: the faulty plugin goes to the error state and the
host carries on. The rest follow a documented policy that differs (see
docs/design.md, "What happens when a plugin fails"): a KeyboardInterrupt
propagates, so does CancelledError on Python 3.10, and a faulty
``plugin_metadata`` is refused at registration. Cells that fail today are
listed in :data:`KNOWN_FAILURES` with what was expected and what happened;
they run as strict xfails, so fixing one turns its test red until the entry
is removed.
"""

from __future__ import annotations

import sys
from typing import Final

import attrs

from ._faults import FAULTS, HOOKS, STYLES

__all__ = [
    "CELLS",
    "KNOWN_FAILURES",
    "POLICIES",
    "PROCESS_CELLS",
    "PROCESS_FAULTS",
    "PROCESS_HOOKS",
    "Cell",
    "KnownFailure",
    "cancellation_is_a_fault",
]

#: Policy -> (short mark in the table, what the cell asserts).
POLICIES: Final = {
    "contained": (
        "C",
        "contained: the plugin is in the error state with a message naming the hook and the "
        "fault, a PluginError event is emitted, its dependents are skipped (or stopped, when "
        "the fault comes after they started), unrelated plugins keep running and executing, "
        "and shutdown finishes within its budget",
    ),
    "registration": (
        "R",
        "refused at registration: register() raises PluginLoadError and discover() records "
        "the plugin as failed, both with a message naming the hook and the fault; dependents "
        "are skipped, unrelated plugins run, shutdown finishes within its budget",
    ),
    "propagates": (
        "P",
        "propagates by design: the exception reaches the host; leaving `async with "
        "PluginManager()` still stops and unloads every plugin within the budget, and no "
        "PluginError is emitted (nothing was contained)",
    ),
    "not_a_fault": (
        "N",
        "not a fault: plugin_metadata is read once by register()/discover(), plain calls the "
        "host makes before anything runs; a slow one only makes registration slow, and the "
        "plugin registers and runs",
    ),
}


def cancellation_is_a_fault() -> bool:
    """Whether a plugin's own CancelledError can be told from the caller's cancellation (3.11+)."""
    return sys.version_info >= (3, 11)


@attrs.frozen
class KnownFailure:
    """A cell that fails today: what the test expects, and what happens instead."""

    tag: str
    expected: str
    actual: str
    owner: str


_LIFECYCLE: Final = ("load", "init_plugin", "start", "pause", "resume", "stop", "unload")


def _known_failure(style: str, hook: str, fault: str) -> KnownFailure | None:
    """The cells that fail today (none: B1 to B4 were fixed; see the git history)."""
    return None


@attrs.frozen
class Cell:
    """One hook of one plugin style misbehaving in one way, inline or in a worker process."""

    style: str
    hook: str
    fault: str
    #: ``"inline"``, or ``"process"``: the plugin runs in a worker (``isolation = "process"``).
    isolation: str = "inline"

    @property
    def id(self) -> str:
        suffix = "-process" if self.isolation == "process" else ""
        return f"{self.style}-{self.hook}-{self.fault}{suffix}"

    def policy(self, *, cancellation_is_fault: bool | None = None) -> str:
        """The documented behaviour this cell asserts (a key of :data:`POLICIES`)."""
        if cancellation_is_fault is None:
            cancellation_is_fault = cancellation_is_a_fault()
        if self.fault == "keyboard_interrupt":
            return "propagates"
        if self.hook == "plugin_metadata":
            return "not_a_fault" if self.fault == "block" else "registration"
        if self.fault == "cancel" and not cancellation_is_fault:
            return "propagates"
        return "contained"

    @property
    def known_failure(self) -> KnownFailure | None:
        return KNOWN_FAILURES.get(self.id)


#: Every cell, in table order: style, then hook, then fault.
CELLS: Final = tuple(
    Cell(style, hook, fault) for style in STYLES for hook in HOOKS for fault in FAULTS
)

#: The hooks and faults also run with the plugin in a worker process (class-style plugins):
#: every hook the manager calls on a running plugin's lifecycle, against the two faults a
#: worker handles differently from the host (an exception crosses the wire; a hang past the
#: deadline ends the worker). ``plugin_metadata`` is read once from the worker when it starts,
#: and ``stats`` answers from figures the worker reported at ``start`` and ``health_check``,
#: so their faults show at those calls instead.
PROCESS_HOOKS: Final = tuple(h for h in HOOKS if h not in ("plugin_metadata", "stats"))
PROCESS_FAULTS: Final = ("raise", "hang")

#: The worker-process cells, in table order: hook, then fault.
PROCESS_CELLS: Final = tuple(
    Cell("class", hook, fault, "process") for hook in PROCESS_HOOKS for fault in PROCESS_FAULTS
)

#: Cells that fail today, by cell id.
KNOWN_FAILURES: Final = {
    cell.id: failure
    for cell in (*CELLS, *PROCESS_CELLS)
    if (failure := _known_failure(cell.style, cell.hook, cell.fault)) is not None
}
