"""How a worker ended (:class:`WorkerExit`) and when to start it again (:class:`RestartPolicy`)."""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable
from typing import Final, Literal

import attrs

__all__ = ["ExitCause", "RestartPolicy", "WorkerExit"]

#: Why a worker ended: on its own (``exited``, ``signal``), out of memory under its cap
#: (``memory``), or ended by the host because a call overran its deadline (``deadline``).
ExitCause = Literal["exited", "signal", "memory", "deadline"]


@attrs.frozen
class WorkerExit:
    """The end of a worker the host did not ask for; ``str()`` is the sentence for people."""

    cause: ExitCause
    #: The exit status when the worker exited, else ``None``.
    code: int | None = None
    #: The signal's name (``"SIGSEGV"``) when a signal ended the worker, else ``None``.
    signal: str | None = None
    #: The cap that was hit, for ``memory``.
    memory_limit: int | None = None
    #: The overrun deadline in seconds and the call that overran it, for ``deadline``.
    deadline: float | None = None
    hook: str | None = None

    def __str__(self) -> str:
        if self.cause == "memory":
            return f"worker exceeded its memory limit ({self.memory_limit} MiB)"
        if self.cause == "deadline":
            limit = f" ({self.deadline:g}s)" if self.deadline is not None else ""
            return f"worker ended: {self.hook or 'a call'} overran its deadline{limit}"
        if self.cause == "signal":
            return f"worker killed by {self.signal}"
        if self.code is None:
            return "worker exited"
        return f"worker exited with code {self.code}"

    @classmethod
    def from_status(cls, returncode: int, memory_limit: int | None, memory_exit: int) -> WorkerExit:
        """Read a ``returncode`` as asyncio reports it (negative: the signal's number)."""
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            return cls("signal", signal=name)
        if memory_limit and returncode == memory_exit:
            return cls("memory", code=returncode, memory_limit=memory_limit)
        return cls("exited", code=returncode)


_MONOTONIC: Final = time.monotonic


class RestartPolicy:
    """At most ``max_restarts`` restarts within any ``restart_window`` seconds, as OTP supervisors.

    Call :meth:`allow` when a crash asks for a restart: it records the restart
    and returns ``True``, or returns ``False`` when the intensity is spent and
    the plugin must stay down. ``clock`` is for tests.
    """

    __slots__ = ("_clock", "_restarts", "max_restarts", "restart_window")

    def __init__(
        self,
        max_restarts: int = 3,
        restart_window: float = 60.0,
        *,
        clock: Callable[[], float] = _MONOTONIC,
    ) -> None:
        if max_restarts < 0:
            raise ValueError("max_restarts must be 0 or more")
        if restart_window <= 0:
            raise ValueError("restart_window must be more than 0 seconds")
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self._clock = clock
        self._restarts: collections.deque[float] = collections.deque()

    def __repr__(self) -> str:
        return (
            f"RestartPolicy(max_restarts={self.max_restarts}, restart_window={self.restart_window})"
        )

    def allow(self) -> bool:
        """Whether one more restart may happen now; if so, it is counted."""
        now = self._clock()
        while self._restarts and now - self._restarts[0] >= self.restart_window:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True

    @property
    def recent(self) -> int:
        """Restarts counted within the current window."""
        now = self._clock()
        return sum(1 for at in self._restarts if now - at < self.restart_window)

    def reset(self) -> None:
        """Forget past restarts (after an operator brings the plugin back by hand)."""
        self._restarts.clear()
