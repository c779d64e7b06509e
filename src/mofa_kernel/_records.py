"""What the manager reports: :class:`PluginRecord`, :class:`Outcome`, :class:`LifecycleReport`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from ._metadata import PluginConfig, PluginMetadata
from ._types import PLAIN_STATES, PluginState

if TYPE_CHECKING:
    from ._source import PluginSource

__all__ = [
    "DiscoveryReport",
    "LifecycleReport",
    "Outcome",
    "OutcomeStatus",
    "PluginRecord",
    "RecordStatus",
    "ok_outcome",
]

#: What the kernel made of a plugin it found (see :class:`PluginRecord`).
RecordStatus = Literal["registered", "disabled", "failed"]
#: What one ``*_all`` verb did to one plugin (see :class:`Outcome`).
OutcomeStatus = Literal["ok", "failed", "skipped", "disabled"]


@attrs.frozen
class PluginRecord:
    """Everything the manager knows about one plugin, at the moment it was asked.

    ``status`` is ``"registered"`` for a usable plugin, ``"disabled"`` for one
    excluded by configuration or environment (never imported), and
    ``"failed"`` for one that could not be imported or registered; ``reason``
    says why for the last two, and ``error`` holds the last failure.
    """

    plugin_id: str
    status: RecordStatus
    state: PluginState
    enabled: bool
    metadata: PluginMetadata | None = None
    config: PluginConfig = attrs.field(factory=PluginConfig)
    timeout: float | None = None
    source: PluginSource | None = None
    reason: str | None = None
    error: str | None = None


@attrs.frozen
class Outcome:
    """What one ``*_all`` verb did to one plugin.

    ``status`` is ``"ok"``, ``"failed"``, ``"skipped"`` (a dependency failed or
    is missing) or ``"disabled"``; ``error`` says why for the last three.
    """

    status: OutcomeStatus
    state: PluginState
    error: str | None = None


#: The ``ok`` outcome of each state without a payload, shared: outcomes are frozen, and a
#: ``*_all`` verb over thousands of plugins would otherwise make one each for the garbage
#: collector to track.
_OK: dict[str, Outcome] = {state.variant: Outcome("ok", state) for state in PLAIN_STATES}


def ok_outcome(state: PluginState) -> Outcome:
    """``Outcome("ok", state)``, the same object each time for a state without a payload."""
    shared = _OK.get(state.variant)
    return shared if shared is not None and shared.state is state else Outcome("ok", state)


@attrs.define
class LifecycleReport:
    """The per-plugin outcomes of one ``*_all`` verb; it never raises for one plugin's failure."""

    verb: str
    outcomes: dict[str, Outcome] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was skipped."""
        return all(o.status in ("ok", "disabled") for o in self.outcomes.values())

    @property
    def failed(self) -> list[str]:
        return [pid for pid, o in self.outcomes.items() if o.status == "failed"]

    @property
    def skipped(self) -> list[str]:
        return [pid for pid, o in self.outcomes.items() if o.status == "skipped"]

    def errors(self) -> list[str]:
        """One line per plugin that failed or was skipped."""
        return [
            f"{pid}: {o.error}"
            for pid, o in self.outcomes.items()
            if o.status in ("failed", "skipped") and o.error
        ]


@attrs.frozen
class DiscoveryReport:
    """What :meth:`PluginManager.discover` found: a record per entry point, and the
    distributions whose metadata could not be read (``problems``, one line each)."""

    records: tuple[PluginRecord, ...]
    problems: tuple[str, ...] = ()

    @property
    def errors(self) -> list[str]:
        """One line per problem: unreadable distributions, then plugins that failed."""
        failed = [
            f"{r.plugin_id}: {r.error or r.reason}" for r in self.records if r.status == "failed"
        ]
        return [*self.problems, *failed]

    @property
    def registered(self) -> list[str]:
        return [r.plugin_id for r in self.records if r.status == "registered"]
