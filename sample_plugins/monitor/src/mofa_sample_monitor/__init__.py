"""mofa-sample-monitor: counts and times every kernel event; a plugin written as hooks only.

This module *is* the plugin. Its entry point (``monitor``, group
``mofa.plugins``) names the module itself, and the kernel calls the functions
marked with :data:`mofa_kernel.hookimpl`: ``plugin_metadata`` says who the
plugin is, ``on_plugin_event`` sees every event of every plugin, and
``execute`` answers with a JSON report. Hooks left out (``load``, ``pause``,
...) behave like the :class:`~mofa_kernel.AgentPlugin` defaults. Any hook may
also be written ``async def``.

What the monitor has seen lives in this module, so it is shared by every
kernel in the process; :func:`reset` forgets it (tests call it between cases).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from typing import Any, Final

from mofa_kernel import (
    KernelEvent,
    PluginEvent,
    PluginExecutionError,
    PluginMetadata,
    PluginPriority,
    PluginState,
    PluginType,
    ReloadEvent,
    hookimpl,
)

__all__ = [
    "METADATA",
    "execute",
    "on_plugin_event",
    "plugin_metadata",
    "report",
    "reset",
    "start",
    "stats",
    "stop",
]

__version__ = "0.1.0"

METADATA: Final = PluginMetadata(
    id="monitor",
    name="Monitor",
    plugin_type=PluginType.MONITOR,
    version=__version__,
    description="Counts every kernel event by kind and plugin, and times plugin start-up.",
    # Among plugins free to start together, start first so as to watch the others start.
    priority=PluginPriority.CRITICAL,
    capabilities=("events", "timings"),
)


class _Recorder:
    """Everything observed since the recorder was made."""

    def __init__(self) -> None:
        # Events may come from reload watcher threads as well as the event loop.
        self.lock = threading.Lock()
        self.running_since: float | None = None
        self.by_variant: Counter[str] = Counter()
        self.by_plugin: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.loading_since: dict[str, float] = {}
        self.startup_seconds: dict[str, float] = {}
        self.states: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.reload_seconds: dict[str, float] = {}

    def observe(self, event: KernelEvent, now: float) -> None:
        plugin_id: str | None = getattr(event, "plugin_id", None)
        with self.lock:
            self.by_variant[event.variant] += 1
            if plugin_id is not None:
                self.by_plugin[plugin_id][event.variant] += 1
            if isinstance(event, PluginEvent.StateChanged):
                self._state_changed(event.plugin_id, event.new_state, now)
            elif isinstance(event, PluginEvent.PluginError):
                self.errors[event.plugin_id] = event.error
            elif isinstance(event, ReloadEvent.ReloadCompleted) and event.success:
                self.reload_seconds[event.plugin_id] = event.duration

    def _state_changed(self, plugin_id: str, state: PluginState, now: float) -> None:
        self.states[plugin_id] = state.variant
        if state == PluginState.LOADING:
            self.loading_since[plugin_id] = now
        elif state == PluginState.RUNNING and plugin_id in self.loading_since:
            self.startup_seconds[plugin_id] = now - self.loading_since.pop(plugin_id)
        elif state.is_error:
            self.loading_since.pop(plugin_id, None)

    def report(self, now: float) -> dict[str, Any]:
        with self.lock:
            uptime = None if self.running_since is None else now - self.running_since
            return {
                "events": {
                    "total": sum(self.by_variant.values()),
                    "by_variant": dict(sorted(self.by_variant.items())),
                    "by_plugin": {
                        pid: dict(sorted(counts.items()))
                        for pid, counts in sorted(self.by_plugin.items())
                    },
                },
                "startup_seconds": dict(sorted(self.startup_seconds.items())),
                "reload_seconds": dict(sorted(self.reload_seconds.items())),
                "states": dict(sorted(self.states.items())),
                "errors": dict(sorted(self.errors.items())),
                "uptime_seconds": uptime,
            }


_recorder = _Recorder()


def reset() -> None:
    """Forget every event observed so far."""
    global _recorder
    running_since = _recorder.running_since
    _recorder = _Recorder()
    _recorder.running_since = running_since


def report() -> dict[str, Any]:
    """The report that ``execute`` returns, as Python data.

    ``events``: counts in total, by variant and by plugin; ``startup_seconds``:
    per plugin, the time from its ``Loading`` state to ``Running``;
    ``reload_seconds``: the duration of each plugin's last successful reload;
    ``states`` and ``errors``: the last state and error seen per plugin;
    ``uptime_seconds``: how long the monitor has been running (``None`` if not).
    """
    return _recorder.report(time.perf_counter())


@hookimpl
def plugin_metadata() -> PluginMetadata:
    return METADATA


@hookimpl
def start() -> None:
    _recorder.running_since = time.perf_counter()


@hookimpl
def stop() -> None:
    _recorder.running_since = None


@hookimpl
def on_plugin_event(event: KernelEvent) -> None:
    _recorder.observe(event, time.perf_counter())


@hookimpl
def execute(input: str) -> str:
    """``""`` or ``"report"``: the JSON report; ``"reset"``: forget everything, then report."""
    command = input.strip().lower()
    if command == "reset":
        reset()
    elif command not in ("", "report"):
        raise PluginExecutionError(f"unknown command {input!r}; expected 'report' or 'reset'")
    return json.dumps(report())


@hookimpl
def stats() -> dict[str, Any]:
    with _recorder.lock:
        return {"events": sum(_recorder.by_variant.values())}
