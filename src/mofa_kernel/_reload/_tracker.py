"""What the reloader knows about one plugin's code between two reload attempts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from ._code import CodeUnit, Fingerprint, Recipe

__all__ = ["NOTHING", "Tracker"]

#: No state: nothing was saved, or nothing is carried.
NOTHING: Final = object()


@attrs.define(eq=False)
class Tracker:
    """What the reloader knows about one plugin's code between reloads."""

    plugin_id: str
    wake: asyncio.Event = attrs.field(factory=asyncio.Event)
    recipe: Recipe | None = None
    unit: CodeUnit | None = None
    #: Why this plugin cannot be reloaded, if it cannot.
    problem: str | None = None
    #: The fingerprint of the code that serves now (None: unknown, reload anything).
    loaded: Fingerprint | None = None
    #: Failed attempts per code fingerprint, and when the next may start (loop time).
    failures: dict[str, int] = attrs.field(factory=dict)
    retry_at: dict[str, float] = attrs.field(factory=dict)
    #: A change waits to be handled.
    pending: bool = False
    first_change: float | None = None
    last_change: float = 0.0
    #: The last changed path, reported in the events.
    path: Path | None = None
    #: Manual strategy: changed on disk, waiting for a reload request.
    stale: bool = False
    #: Reload even if the code looks unchanged (an upgraded distribution).
    force: bool = False
    #: The code is an installed copy (beside its dist-info): changes are installs, upgrades.
    installed: bool = False
    #: The code runs in a worker process (isolated): each version is a new process.
    in_worker: bool = False
    #: State saved from an instance that was taken down, for the next one that loads.
    carried: object = NOTHING
    worker: asyncio.Task[None] | None = None

    def note(self, path: Path | None, now: float) -> None:
        """A change was seen (``path=None``: look whether anything changed)."""
        self.pending = True
        self.last_change = now
        if self.first_change is None:
            self.first_change = now
        if path is not None:
            self.path = path
        self.wake.set()

    def report_path(self) -> Path:
        if self.path is not None:
            return self.path
        if self.unit is not None:
            return self.unit.main_file()
        return Path(self.plugin_id)
