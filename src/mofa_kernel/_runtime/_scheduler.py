"""The scheduler: the only code that orders several plugins.

It plans (which plugins a verb concerns, in dependency order, and which
cannot start and why), brings plugins up concurrently as their dependencies
become RUNNING, takes them down in exactly the reverse order, and takes a
failed plugin's dependents down with it.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from mofa_kernel._errors import (
    DependencyCycleError,
    DependencyError,
    MissingDependencyError,
    PluginError,
)
from mofa_kernel._graph import DependencyProblem, Dependents, closure, dependents_of, resolve
from mofa_kernel._records import LifecycleReport, Outcome, OutcomeStatus, ok_outcome
from mofa_kernel._types import PluginState

from ._lifecycle import Lifecycle
from ._registry import Entry, Registry

__all__ = ["Scheduler"]

UNLOADED: Final = PluginState.UNLOADED
LOADED: Final = PluginState.LOADED
RUNNING: Final = PluginState.RUNNING
PAUSED: Final = PluginState.PAUSED
_UP: Final = (RUNNING, PAUSED)

_ERROR_OF_KIND: Final[dict[str, type[DependencyError]]] = {
    "missing": MissingDependencyError,
    "cycle": DependencyCycleError,
}


#: Whether the bring-up's tasks start eagerly (3.12+): a bring-up that never suspends then
#: finishes inside the call that made its task, without a trip through the event loop.
_EAGER: Final = sys.version_info >= (3, 12)
#: Without eager tasks, how many plugins' tasks one turn of the event loop makes. The others
#: wait their turn, by when those have taken their first step (and finished, or suspended
#: on something of their own): thousands of plugins free at once would otherwise be
#: thousands of tasks alive together, for the garbage collector to walk.
_TURN: Final = 64


def _start_task(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[None]:
    """A task for ``coro``, made directly (the kernel's own bring-up needs no task factory),
    started eagerly where it can be."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return asyncio.Task(coro, loop=loop)


class Scheduler:
    """Plans and runs the lifecycle of many plugins; see the module docstring."""

    def __init__(self, registry: Registry, lifecycle: Lifecycle) -> None:
        self._registry = registry
        self._entries = registry.entries
        self._lifecycle = lifecycle
        self._background: set[asyncio.Task[None]] = set()
        lifecycle.on_down = self.take_down_dependents

    # -- planning -------------------------------------------------------------------------

    def start_order(self) -> list[str]:
        """The order plugins start in: dependencies first, then priority, then id."""
        usable = {pid: e for pid, e in self._entries.items() if e.metadata is not None}
        resolution = resolve(
            {pid: e.dependencies for pid, e in usable.items()},
            {pid: e.priority for pid, e in usable.items()},
        )
        return list(resolution.order)

    def plan(
        self, wanted: Iterable[str], report: LifecycleReport | None = None
    ) -> tuple[list[str], dict[str, DependencyProblem]]:
        """The dependency order of ``wanted`` plus what they need, and what cannot start.

        With a ``report``, each plugin kept down by a dependency problem is
        recorded as skipped and gets a ``PluginError`` event naming the chain.
        """
        graph = {pid: e.dependencies for pid, e in self._entries.items()}
        needed = closure(graph, wanted)
        unavailable: dict[str, str] = {}
        usable: dict[str, Entry] = {}
        for pid in needed:
            entry = self._entries[pid]
            if entry.plugin is None or entry.state.is_error:
                unavailable[pid] = "failed"
            elif not entry.wanted:
                unavailable[pid] = "is disabled"
            else:
                usable[pid] = entry
        resolution = resolve(
            {pid: e.dependencies for pid, e in usable.items()},
            {pid: e.priority for pid, e in usable.items()},
            unavailable,
        )
        if report is not None:
            for pid, problem in resolution.problems.items():
                entry = self._entries[pid]
                if entry.plugin is None:
                    continue
                why = problem.describe()
                report.outcomes[pid] = Outcome("skipped", entry.state, why)
                self._lifecycle.report(entry, why)
        return list(resolution.order), dict(resolution.problems)

    def dependency_error(self, plugin_id: str, *, running: bool = False) -> DependencyError | None:
        """Why ``plugin_id`` cannot start for reasons of dependencies, as an exception, or None.

        Looks at missing, failed or disabled dependencies and cycles; with
        ``running``, also at dependencies that exist but are not RUNNING.
        """
        deps = self._entries[plugin_id].dependencies
        if all(dep in self._entries and self._entries[dep].state is RUNNING for dep in deps):
            return None  # the usual case, and a running dependency cannot be in a cycle with us
        _, problems = self.plan([plugin_id])
        problem = problems.get(plugin_id)
        if problem is not None:
            cls = _ERROR_OF_KIND.get(problem.kind, DependencyError)
            return cls(problem.describe(), plugin_id=plugin_id, chain=problem.chain)
        if not running:
            return None
        for dep in deps:
            state = self._entries[dep].state
            if state is not RUNNING:
                return DependencyError(
                    f"dependency {dep!r} of {plugin_id!r} is {state}, not Running",
                    plugin_id=plugin_id,
                    chain=(plugin_id, dep),
                )
        return None

    def enabled(self, report: LifecycleReport) -> list[str]:
        """The plugins a ``*_all`` verb concerns; the others go in ``report`` with why."""
        ids = []
        for pid, entry in self._entries.items():
            if entry.plugin is None:
                report.outcomes[pid] = Outcome("failed", entry.state, entry.error)
            elif not entry.wanted:
                report.outcomes[pid] = Outcome("disabled", entry.state, "disabled by configuration")
            else:
                ids.append(pid)
        return ids

    # -- one verb over many plugins -------------------------------------------------------

    async def each(
        self,
        verb: str,
        step: Callable[[Entry], Awaitable[None]],
        wants: Callable[[Entry], bool],
    ) -> LifecycleReport:
        """Run ``step`` on every enabled plugin that ``wants`` it, in dependency order; a
        plugin whose dependency failed is skipped."""
        report = LifecycleReport(verb)
        order, _ = self.plan(self.enabled(report), report)
        failed: set[str] = set()
        for pid in order:
            entry = self._entries[pid]
            blocker = next((d for d in entry.dependencies if d in failed), None)
            if blocker is not None:
                failed.add(pid)
                report.outcomes[pid] = Outcome(
                    "skipped", entry.state, f"dependency {blocker} failed"
                )
                continue
            if not wants(entry):
                if entry.state.is_error:
                    failed.add(pid)
                    report.outcomes[pid] = Outcome("failed", entry.state, entry.error)
                else:
                    report.outcomes[pid] = ok_outcome(entry.state)
                continue
            try:
                await step(entry)
            except PluginError as exc:
                failed.add(pid)
                report.outcomes[pid] = Outcome("failed", entry.state, str(exc))
            else:
                report.outcomes[pid] = ok_outcome(entry.state)
        return report

    async def bring_up(self, ids: Iterable[str] | None = None) -> LifecycleReport:
        """Bring ``ids`` (default: every enabled ``auto_start`` plugin) and what they need
        to RUNNING.

        A plugin starts once all its dependencies run; plugins free at the same
        time start concurrently, highest priority first, then by id. One
        plugin's failure skips only its dependents.
        """
        report = LifecycleReport("start_all")
        enabled = self.enabled(report)
        if ids is None:
            wanted = [pid for pid in enabled if self._entries[pid].config.auto_start]
        else:
            wanted = list(ids)
            for pid in wanted:
                self._registry.get(pid)  # PluginNotFoundError for an unknown id
            concerned = closure({p: e.dependencies for p, e in self._entries.items()}, wanted)
            report.outcomes = {p: o for p, o in report.outcomes.items() if p in concerned}
            wanted = [pid for pid in wanted if pid not in report.outcomes]
        order, _ = self.plan(wanted, report)
        if order:
            await _BringUp(self._entries, self._lifecycle, order, report).run()
        return report

    async def stop_all(self) -> LifecycleReport:
        """Stop every running or paused plugin, in exactly the reverse of the order they started."""
        report = LifecycleReport("stop_all")
        for pid in reversed(list(self._registry.up_order)):
            entry = self._entries[pid]
            if entry.state not in _UP:
                continue
            try:
                await self._lifecycle.stop(entry)
            except PluginError as exc:
                report.outcomes[pid] = Outcome("failed", entry.state, str(exc))
            else:
                report.outcomes[pid] = ok_outcome(entry.state)
        return report

    async def unload_all(self) -> LifecycleReport:
        """Unload every loaded plugin (and clean up failed ones), in reverse order."""
        report = LifecycleReport("unload_all")
        up_order = self._registry.up_order
        order = list(reversed(up_order))
        order += [pid for pid in reversed(self._registry.load_order) if pid not in up_order]
        order += [pid for pid, e in self._entries.items() if e.state.is_error and pid not in order]
        for pid in order:
            entry = self._entries[pid]
            if not (entry.state == LOADED or (entry.state.is_error and entry.plugin is not None)):
                continue
            try:
                await self._lifecycle.unload(entry)
            except PluginError as exc:
                report.outcomes[pid] = Outcome("failed", entry.state, str(exc))
            else:
                report.outcomes[pid] = ok_outcome(entry.state)
        return report

    # -- failures that spread -------------------------------------------------------------

    def dependents_up(self, plugin_id: str) -> list[str]:
        """The running or paused plugins that need ``plugin_id``, last started first."""
        needed = dependents_of(self._registry.graph(), plugin_id)
        return [
            pid
            for pid in reversed(self._registry.up_order)
            if pid in needed and self._entries[pid].state in _UP
        ]

    def take_down_dependents(self, plugin_id: str) -> None:
        """A plugin failed while up: stop what depends on it, in reverse start order."""
        dependents = self.dependents_up(plugin_id)
        if not dependents:
            return
        for pid in dependents:  # refuse their executes at once, before the stops run
            self._registry.serving.pop(pid, None)
            self._entries[pid].waiting_for = plugin_id  # back when it runs again (a restart)
        reason = f"stopped because dependency {plugin_id} failed"
        task = asyncio.get_running_loop().create_task(self._stop_each(dependents, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_each(self, dependents: list[str], reason: str) -> None:
        for pid in dependents:
            entry = self._entries.get(pid)
            if entry is None or entry.state not in _UP or entry.busy:
                continue
            entry.reason = reason
            try:
                await self._lifecycle.stop(entry)
            except PluginError:
                continue  # already recorded on the entry and emitted as PluginError

    async def take_down_for(self, plugin_id: str, why: str) -> list[str]:
        """``plugin_id`` is going away (``why``): stop its running dependents, report each
        with a PluginError, and remember to bring them back when it returns."""
        dependents = self.dependents_up(plugin_id)
        for pid in dependents:
            self._registry.serving.pop(pid, None)
        for pid in dependents:
            entry = self._entries[pid]
            entry.waiting_for = plugin_id
            self._lifecycle.report(entry, f"stopped because dependency {plugin_id} {why}")
            if entry.state in _UP and not entry.busy:
                try:
                    await self._lifecycle.stop(entry)
                except PluginError:
                    continue
        return dependents

    def waiting_for(self, plugin_ids: Iterable[str]) -> list[str]:
        """The plugins taken down because one of ``plugin_ids`` went away."""
        back = set(plugin_ids)
        return [pid for pid, e in self._entries.items() if e.waiting_for in back]

    async def settle(self) -> None:
        """Wait for the take-downs the scheduler started on its own."""
        while self._background:
            under_way = list(self._background)
            await asyncio.gather(*under_way, return_exceptions=True)
            self._background.difference_update(
                under_way
            )  # done, whether or not their callbacks ran


class _BringUp:
    """One concurrent bring-up: a plugin is launched as soon as all its dependencies run."""

    def __init__(
        self,
        entries: dict[str, Entry],
        lifecycle: Lifecycle,
        order: list[str],
        report: LifecycleReport,
    ) -> None:
        self._entries = entries
        self._lifecycle = lifecycle
        self._order = order
        self._report = report
        self._position = position = {pid: n for n, pid in enumerate(order)}
        needs = [entries[pid].dependencies for pid in order]
        self._dependents = Dependents(needs, position)
        self._waiting = [len({dep for dep in deps if dep in position}) for deps in needs]
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._remaining = len(order)
        self._tasks: set[asyncio.Task[None]] = set()
        # One bound method and one context for every task's done callback, rather than a new
        # one of each per task (forgetting a task reads no context variable).
        self._forget_task = self._tasks.discard
        self._quiet = contextvars.Context()
        self._ready: list[int] = []  # positions in ``order``: a heap, best first
        self._launching = False
        self._turn: asyncio.Handle | None = None  # the next turn's launch, when one is due
        self._context = contextvars.copy_context()  # the caller's, for every turn

    async def run(self) -> None:
        self._ready.extend(n for n, count in enumerate(self._waiting) if count == 0)
        self._launch()
        try:
            await self._done
        finally:
            if self._turn is not None:
                self._turn.cancel()
            for task in list(self._tasks):
                if not task.done():
                    task.cancel()

    def _settle(self, pid: str, outcome: Outcome) -> None:
        self._report.outcomes[pid] = outcome
        self._remaining -= 1
        if self._remaining == 0 and not self._done.done():
            self._done.set_result(None)

    def _skip_dependents(self, pid: str) -> None:
        stack = [pid]
        while stack:
            failed = stack.pop()
            for n in self._dependents.of(self._position[failed]):
                child = self._order[n]
                if child not in self._report.outcomes:
                    reason = f"dependency {failed} failed"
                    self._settle(child, Outcome("skipped", self._entries[child].state, reason))
                    stack.append(child)

    def _launch(self) -> None:
        if not _EAGER:
            if self._turn is None and self._ready and not self._done.done():
                self._turn = self._loop.call_soon(self._launch_turn, context=self._context)
            return
        # A trampoline: with eager tasks a bring-up may finish, and release its
        # dependents, inside create_task; they queue here instead of recursing.
        if self._launching:
            return
        self._launching = True
        try:
            while self._ready:
                pid = self._order[heapq.heappop(self._ready)]
                task = _start_task(self._loop, self._one(pid))
                if not task.done():
                    self._tasks.add(task)
                    task.add_done_callback(self._forget_task, context=self._quiet)
        finally:
            self._launching = False

    def _launch_turn(self) -> None:
        """Make the tasks of the next :data:`_TURN` plugins free to start, best first; the
        rest get a turn of their own, after these have taken their first step."""
        self._turn = None
        if self._done.done():
            return
        ready = self._ready
        for _ in range(min(_TURN, len(ready))):
            task = _start_task(self._loop, self._one(self._order[heapq.heappop(ready)]))
            self._tasks.add(task)
            task.add_done_callback(self._forget_task, context=self._quiet)
        self._launch()

    async def _one(self, pid: str) -> None:
        entry = self._entries[pid]
        lifecycle = self._lifecycle
        try:
            if entry.state is UNLOADED:
                await lifecycle.load(entry)
            if entry.state is LOADED:
                await lifecycle.start(entry)
        except PluginError as exc:
            self._settle(pid, Outcome("failed", entry.state, str(exc)))
            self._skip_dependents(pid)
            return
        except BaseException as exc:
            # Not a plugin failure (a bug of ours, or cancellation): end the bring-up with it.
            if not self._done.done():
                self._done.set_exception(exc)
            raise
        if entry.state is not RUNNING:
            error = entry.error if entry.state.is_error else f"plugin is {entry.state}"
            status: OutcomeStatus = "failed" if entry.state.is_error else "skipped"
            self._settle(pid, Outcome(status, entry.state, error))
            self._skip_dependents(pid)
            return
        self._settle(pid, ok_outcome(entry.state))
        waiting = self._waiting
        for n in self._dependents.of(self._position[pid]):
            waiting[n] -= 1
            if waiting[n] == 0 and self._order[n] not in self._report.outcomes:
                heapq.heappush(self._ready, n)
        self._launch()
