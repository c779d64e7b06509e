"""What the steps of a reload attempt share: how one fails, and setting an instance's state."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mofa_kernel._plugin import AgentPlugin
    from mofa_kernel._types import PluginState

__all__ = ["StepFailed", "set_state"]


class StepFailed(Exception):
    """A step of the transaction failed; ``message`` is the line for ReloadFailed.

    ``timeout`` is the deadline that passed, if that is why; ``final`` says that
    another attempt at the same bytes cannot succeed (a syntax error).
    """

    def __init__(
        self, step: str, message: str, *, timeout: float | None = None, final: bool = False
    ) -> None:
        super().__init__(message)
        self.step = step
        self.message = message
        self.timeout = timeout
        self.final = final


def set_state(plugin: AgentPlugin, state: PluginState) -> None:
    """Tell an instance that is not (or no longer) in service its state."""
    with contextlib.suppress(AttributeError):  # a read-only ``state`` property
        plugin.state = state
