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


_BLOCKED_EXECUTE_ANSWERS = KnownFailure(
    tag="D1",
    expected="an execute that blocks the event loop (time.sleep, 0.5 s) past the block limit "
    "(0.2 s) fails like any other faulty execute: the caller gets PluginExecutionError naming "
    "the block, and the plugin is in the error state when execute() returns",
    actual="the caller gets the plugin's answer; the plugin goes to the error state only at "
    "the loop monitor's next heartbeat (block_limit / 4 later), because execute() does not "
    "deliver pending incidents the way _invoke() does",
    owner="src/mofa_kernel/_manager.py (execute: deliver the monitor's pending incident for "
    "this call before returning, as _invoke does)",
)
_BLOCKED_ANSWER_KEPT = KnownFailure(
    tag="D2",
    expected="a health_check or stats that blocks the event loop past the block limit is "
    "reported like its other faults: health_check() gives False and stats() gives "
    "{'error': ...} for the plugin",
    actual="the plugin is put in the error state (the message and the PluginError event are "
    "right), but health_check() still reports it healthy and stats() returns its figures: "
    "_invoke() delivers the incident through _blocked() -> _fail() for a slot that is not busy "
    "and then returns the hook's answer instead of raising",
    owner="src/mofa_kernel/_manager.py (_invoke: when a delivered incident is about this very "
    "call, raise its error, as it does for pending_fault)",
)
_HOOK_RETURN_DROPPED = KnownFailure(
    tag="B1",
    expected="a module-style lifecycle hook returning 42 fails like a class-style one: "
    "'<hook> failed: returned int, expected None'",
    actual="HookPlugin.load/init_plugin/start/pause/resume/stop/unload await the hook and "
    "drop its return value, so the manager sees None and the step succeeds",
    owner="src/mofa_kernel/_adapters.py (HookPlugin: return the hook's value from each step)",
)
_METADATA_BASE_EXCEPTION = KnownFailure(
    tag="B2",
    expected="plugin_metadata (or a metadata property) raising CancelledError or SystemExit is "
    "refused like any other exception: PluginLoadError from register() and a failed record "
    "from discover()",
    actual="as_agent_plugin catches only Exception, so CancelledError and SystemExit escape "
    "register() and discover(): one plugin can end the host (SystemExit) or look like the "
    "host's own cancellation",
    owner="src/mofa_kernel/_adapters.py (as_agent_plugin: catch SystemExit and "
    "asyncio.CancelledError where it catches Exception)",
)
_METADATA_COROUTINE_LEAK = KnownFailure(
    tag="B3",
    expected="a class-style plugin whose metadata property is async is refused with "
    "PluginLoadError and nothing else happens",
    actual="the refusal leaves the coroutine unawaited: 'RuntimeWarning: coroutine ... was "
    "never awaited' when it is collected (an error under filterwarnings=error)",
    owner="src/mofa_kernel/_adapters.py (_check_metadata: close a coroutine it refuses, as "
    "the module-style path already does)",
)
_METADATA_TYPE_UNNAMED = KnownFailure(
    tag="B4",
    expected="a module's plugin_metadata returning a dict is refused with a message that names "
    "the hook, like its other refusals ('plugin_metadata() raised ...', 'plugin_metadata() "
    "must be a plain function')",
    actual="the message reads \"plugin 'faulty': metadata is dict, expected PluginMetadata\", "
    "naming neither plugin_metadata nor the fact that it returned the value",
    owner="src/mofa_kernel/_adapters.py (as_agent_plugin/_check_metadata: say "
    "'plugin_metadata() returned dict, expected PluginMetadata' for a module-style plugin)",
)

_LIFECYCLE: Final = ("load", "init_plugin", "start", "pause", "resume", "stop", "unload")


def _known_failure(style: str, hook: str, fault: str) -> KnownFailure | None:
    if fault == "block" and hook == "execute":
        return _BLOCKED_EXECUTE_ANSWERS
    if fault == "block" and hook in ("health_check", "stats"):
        return _BLOCKED_ANSWER_KEPT
    if fault == "wrong_type" and style == "module" and hook in _LIFECYCLE:
        return _HOOK_RETURN_DROPPED
    if hook == "plugin_metadata" and fault in ("cancel", "system_exit"):
        return _METADATA_BASE_EXCEPTION
    if hook == "plugin_metadata" and fault == "hang" and style == "class":
        return _METADATA_COROUTINE_LEAK
    if hook == "plugin_metadata" and fault == "wrong_type" and style == "module":
        return _METADATA_TYPE_UNNAMED
    return None


@attrs.frozen
class Cell:
    """One hook of one plugin style misbehaving in one way."""

    style: str
    hook: str
    fault: str

    @property
    def id(self) -> str:
        return f"{self.style}-{self.hook}-{self.fault}"

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

#: Cells that fail today, by cell id.
KNOWN_FAILURES: Final = {
    cell.id: failure
    for cell in CELLS
    if (failure := _known_failure(cell.style, cell.hook, cell.fault)) is not None
}
