"""Dependency order: a deterministic topological order with missing links and cycles explained."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence

import attrs

__all__ = [
    "DependencyProblem",
    "Dependents",
    "GraphResolution",
    "closure",
    "dependents_of",
    "resolve",
]


@attrs.frozen
class DependencyProblem:
    """Why a plugin cannot start.

    ``kind`` is ``"missing"`` (an id nobody registered), ``"unavailable"`` (a
    known plugin that cannot run: ``detail`` says why, e.g. ``"failed"``),
    ``"cycle"``, or ``"blocked"`` (it waits on a plugin caught in a cycle).
    ``chain`` runs from the plugin to the cause: ``(skill, calc, ghost)`` when
    skill needs calc which needs the missing ghost; a cycle's chain starts and
    ends on the same id.
    """

    kind: str
    chain: tuple[str, ...]
    detail: str = ""

    def describe(self) -> str:
        arrow = " -> ".join(self.chain)
        culprit = self.chain[-1]
        if self.kind == "missing":
            return f"missing dependency {culprit!r} ({arrow})"
        if self.kind == "unavailable":
            text = f"dependency {culprit} {self.detail}"
            return text if len(self.chain) == 2 else f"{text} ({arrow})"
        if self.kind == "cycle":
            return f"dependency cycle {arrow}"
        return f"dependency {self.chain[1]!r} cannot start ({arrow})"


@attrs.frozen
class GraphResolution:
    #: Plugins that can start, dependencies first, then priority (high first), then id.
    order: tuple[str, ...]
    #: Plugins that cannot start, and why.
    problems: Mapping[str, DependencyProblem]


class Dependents:
    """Who depends on whom, among ids numbered ``0..n-1``: :meth:`of` gives the numbers of
    the ids that depend on one, each once, in the order of their numbers.

    Two flat lists of integers however many ids there are: the garbage collector tracks
    two objects, where a list of dependents per id would make it track one per plugin
    (and a ``*_all`` verb over thousands of plugins walk them all).
    """

    __slots__ = ("_children", "_offsets")

    def __init__(self, needs: Sequence[Iterable[str]], index: Mapping[str, int]) -> None:
        """``needs[n]``: the ids that id number ``n`` depends on; ``index``: the number of
        each id. Needed ids without a number are left out."""
        offsets = [0] * (len(needs) + 1)
        for deps in needs:
            for dep in {index[d] for d in deps if d in index}:
                offsets[dep + 1] += 1
        for n in range(len(needs)):
            offsets[n + 1] += offsets[n]
        children = [0] * offsets[-1]
        cursor = offsets[:-1]
        for child, deps in enumerate(needs):
            for dep in {index[d] for d in deps if d in index}:
                children[cursor[dep]] = child
                cursor[dep] += 1
        self._offsets = offsets
        self._children = children

    def of(self, n: int) -> list[int]:
        """The numbers of the ids that depend on id number ``n``, smallest first."""
        return self._children[self._offsets[n] : self._offsets[n + 1]]


def resolve(
    dependencies: Mapping[str, Sequence[str]],
    priorities: Mapping[str, int],
    unavailable: Mapping[str, str] | None = None,
) -> GraphResolution:
    """Order ``dependencies`` (id -> ids it needs) topologically, explaining what cannot start.

    ``unavailable`` maps ids that exist but cannot run to the reason
    (``"failed"``, ``"is disabled"``); depending on one blocks a plugin.
    """
    unavailable = unavailable or {}
    problems: dict[str, DependencyProblem] = {}
    for pid, deps in dependencies.items():
        for dep in deps:
            if dep in unavailable:
                problems[pid] = DependencyProblem("unavailable", (pid, dep), unavailable[dep])
                break
            if dep not in dependencies:
                problems[pid] = DependencyProblem("missing", (pid, dep))
                break

    # Rank every id once by (priority, id); the heap then compares small integers. Two
    # stable sorts rather than one by a tuple per id: integers and strings are nothing
    # for the garbage collector to track.
    ranked = sorted(dependencies)
    ranked.sort(key=lambda pid: -priorities.get(pid, 0))
    rank = {pid: n for n, pid in enumerate(ranked)}
    waiting = [len(set(dependencies[pid])) for pid in ranked]
    dependents = Dependents([dependencies[pid] for pid in ranked], rank)
    ready = [n for n, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(ranked[n])
        for child in dependents.of(n):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)

    placed = set(order)
    stuck = sorted(pid for pid in dependencies if pid not in placed)
    explored: set[str] = set()  # nodes from which no cycle is reachable: never walked again
    for pid in stuck:
        if pid in problems:
            continue
        cycle = _find_cycle(pid, dependencies, placed, explored)
        if cycle is not None:
            for member in cycle[:-1]:
                problems.setdefault(member, DependencyProblem("cycle", cycle))
    # What is left waits on a plugin that has a problem: point at the nearest one.
    for pid in stuck:
        _blame(pid, dependencies, problems, placed)
    good = [pid for pid in order if pid not in problems]
    return GraphResolution(order=tuple(good), problems=problems)


def closure(dependencies: Mapping[str, Sequence[str]], roots: Iterable[str]) -> list[str]:
    """``roots`` and everything they need, transitively, among the ids of ``dependencies``;
    in the order first reached."""
    seen: dict[str, None] = {}
    stack = list(roots)
    stack.reverse()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in dependencies:
            continue
        seen[pid] = None
        stack.extend(reversed(dependencies[pid]))
    return list(seen)


def dependents_of(dependencies: Mapping[str, Sequence[str]], root: str) -> set[str]:
    """Every id that needs ``root``, directly or through others."""
    needed_by: dict[str, list[str]] = {}
    for pid, deps in dependencies.items():
        for dep in deps:
            needed_by.setdefault(dep, []).append(pid)
    found: set[str] = set()
    stack = [root]
    while stack:
        for pid in needed_by.get(stack.pop(), ()):
            if pid not in found:
                found.add(pid)
                stack.append(pid)
    return found


def _find_cycle(
    start: str,
    dependencies: Mapping[str, Sequence[str]],
    placed: set[str],
    visited: set[str],
) -> tuple[str, ...] | None:
    """A cycle reachable from ``start`` through unplaced plugins, as a closed chain.

    Depth-first with an explicit stack, so a chain of any length is fine.
    ``visited`` holds the nodes already known to reach no cycle (shared between
    calls, so that every node is walked once).
    """
    if start in visited:
        return None
    path: list[str] = []
    on_path: dict[str, int] = {}

    def successors(node: str) -> Iterator[str]:
        for dep in sorted(set(dependencies.get(node, ()))):
            if dep not in placed and dep in dependencies:
                yield dep

    on_path[start] = 0
    path.append(start)
    frames: list[Iterator[str]] = [successors(start)]
    while frames:
        dep = next(frames[-1], None)
        if dep is None:
            frames.pop()
            node = path.pop()
            del on_path[node]
            visited.add(node)
            continue
        if dep in on_path:
            return (*path[on_path[dep] :], dep)
        if dep not in visited:
            on_path[dep] = len(path)
            path.append(dep)
            frames.append(successors(dep))
    return None


def _blame(
    start: str,
    dependencies: Mapping[str, Sequence[str]],
    problems: dict[str, DependencyProblem],
    placed: set[str],
) -> None:
    """Give ``start`` (and every unplaced plugin on its way down) the problem of the
    nearest dependency that has one. Iterative: a chain of any length is fine."""
    if start in problems or start in placed:
        return
    path: list[str] = [start]
    on_path = {start}
    frames: list[Iterator[str]] = [iter(sorted(set(dependencies.get(start, ()))))]
    while frames:
        dep = next(frames[-1], None)
        if dep is None:  # nothing below this node explains it
            frames.pop()
            on_path.discard(path.pop())
            continue
        cause = problems.get(dep)
        if cause is None:
            if dep in placed or dep in on_path:
                continue
            path.append(dep)
            on_path.add(dep)
            frames.append(iter(sorted(set(dependencies.get(dep, ())))))
            continue
        # Every node on the path gets the cause, innermost first.
        for node in reversed(path):
            kind = cause.kind if cause.kind in ("missing", "unavailable") else "blocked"
            cause = problems[node] = DependencyProblem(kind, (node, *cause.chain), cause.detail)
        return
