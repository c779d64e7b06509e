"""Noticing a plugin that blocks the event loop, and which one it was.

A deadline cannot interrupt code that never awaits (``time.sleep``, a busy
loop, a blocking socket): the loop is stuck until it returns. :class:`LoopMonitor`
notices it from outside. The loop stamps a heartbeat every ``limit / 4``
seconds; a watcher thread checks the stamp, and when it is older than
``limit`` it looks at the loop thread's stack to see which plugin call is
running. The incident is handed back to the loop (``on_block``) as soon as
the loop runs again, where the manager reports it like any other fault.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import attrs

__all__ = ["BlockIncident", "LoopMonitor"]

_logger = logging.getLogger("mofa_kernel")


@attrs.frozen
class BlockIncident:
    """``hook`` of ``plugin_id`` blocked the loop for over ``limit`` seconds, at ``where``."""

    plugin_id: str
    hook: str
    limit: float
    where: str

    def describe(self) -> str:
        return f"blocked the event loop for over {self.limit:g}s ({self.where})"


#: Finds (plugin id, hook) from a frame of the manager's own code, or None.
FrameReader = Callable[[FrameType], "tuple[str, str] | None"]


class LoopMonitor:
    """A heartbeat in the loop and a thread watching it; see the module docstring."""

    def __init__(
        self,
        limit: float,
        anchors: dict[CodeType, FrameReader],
        on_block: Callable[[BlockIncident], None],
        *,
        on_seen: Callable[[], None] | None = None,
    ) -> None:
        self.limit = limit
        self._anchors = anchors
        # Weakly held, so that a manager nobody shut down can still be collected (its
        # monitor's thread then ends by itself).
        self._on_block: Callable[[], Callable[[BlockIncident], None] | None] = (
            weakref.WeakMethod(on_block) if inspect.ismethod(on_block) else lambda: on_block
        )
        #: Told, from the watcher thread, that an incident waits (so the loop can look).
        self._on_seen: Callable[[], Callable[[], None] | None] = (
            weakref.WeakMethod(on_seen) if inspect.ismethod(on_seen) else (lambda: on_seen)
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._beat = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[BlockIncident] = []
        self._lock = threading.Lock()
        #: The plugin found holding the loop in the current stall, and that stall's beat
        #: (written by the watcher thread, read by the loop).
        self._culprit: str | None = None
        self._culprit_beat = -1.0
        #: Recent stalls whose culprit is known: (start, end, plugin id).
        self._stalls: collections.deque[tuple[float, float, str]] = collections.deque(maxlen=64)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch ``loop`` (the running loop, called from its thread)."""
        if self.running and self._loop is loop:
            return
        self.stop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._handle = loop.call_later(self.limit / 4, self._heartbeat)
        self._thread = threading.Thread(
            target=self._watch, name="mofa-kernel loop monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.deliver()

    def deliver(self) -> None:
        """Hand the incidents seen so far to ``on_block`` (in the loop's thread)."""
        with self._lock:
            pending, self._pending = self._pending, []
        on_block = self._on_block()
        if on_block is None:
            return
        for incident in pending:
            on_block(incident)

    def stalled(self, owner: str | None, started: float, now: float) -> float:
        """Seconds of ``[started, now]`` during which a plugin other than ``owner`` was seen
        holding the loop (what a deadline of ``owner``'s must not be charged for)."""
        stalls = list(self._stalls)
        culprit, beat = self._culprit, self._culprit_beat
        if culprit is not None and beat == self._beat:  # a stall still being recovered from
            stalls.append((beat, now, culprit))
        total = 0.0
        for begin, end, who in stalls:
            if who != owner:
                total += max(0.0, min(end, now) - max(begin, started))
        return total

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self._culprit is not None and self._culprit_beat == self._beat:
            self._stalls.append((self._beat, now, self._culprit))
            self._culprit = None
        self._beat = now
        if self._pending:
            self.deliver()
        loop = self._loop
        if loop is not None and not self._stop.is_set():
            self._handle = loop.call_later(self.limit / 4, self._heartbeat)

    def _watch(self) -> None:
        # One plugin call is blamed only if it is seen running, the very same call (frame),
        # for the whole limit while the loop does not turn; many short calls that make the
        # loop late together are no single call's fault.
        tick = self.limit / 8
        suspect: FrameType | None = None
        since = 0.0
        reported_beat = -1.0
        while not self._stop.wait(tick):
            loop = self._loop
            if loop is None or loop.is_closed() or self._on_block() is None:
                return  # the loop or the manager is gone
            beat = self._beat
            now = time.monotonic()
            if now - beat < 2 * tick or beat == reported_beat:
                suspect = None  # the loop turns (or this stretch was reported)
                continue
            found = self._inspect()
            if found is None:
                suspect = None
                continue
            anchor, incident = found
            if anchor is not suspect:
                suspect, since = anchor, now
                continue
            if now - since < self.limit:
                continue
            reported_beat = beat  # one report per blocked stretch
            suspect = None
            self._culprit = incident.plugin_id
            self._culprit_beat = beat
            # Said now, while the loop is still stuck; the event follows once it runs again.
            _logger.warning(
                "plugin %s: %s is blocking the event loop (%s)",
                incident.plugin_id,
                incident.hook,
                incident.describe(),
            )
            with self._lock:
                self._pending.append(incident)
            on_seen = self._on_seen()
            if on_seen is not None:
                on_seen()

    def _inspect(self) -> tuple[FrameType, BlockIncident] | None:
        """The plugin call running in the loop's thread now: its manager frame, and who."""
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        innermost = frame
        while frame is not None:
            reader = self._anchors.get(frame.f_code)
            if reader is not None:
                found = reader(frame)
                if found is not None:
                    plugin_id, hook = found
                    return frame, BlockIncident(plugin_id, hook, self.limit, _where(innermost))
            frame = frame.f_back
        return None


def _where(frame: FrameType | None) -> str:
    if frame is None:
        return "unknown"
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def frame_local(frame: FrameType, name: str) -> Any:
    """A local variable of a frame of another thread (read only)."""
    return frame.f_locals.get(name)
