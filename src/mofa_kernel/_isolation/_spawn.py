"""Starting worker processes and learning how they ended, without polling.

A worker is started with ``os.posix_spawn`` in a new session (so it leads a
process group of its own), with its stdin on ``/dev/null``, its stdout and
stderr the host's, and exactly two more descriptors: the pipes of the wire.
Its end is awaited on a pidfd (Linux) or, elsewhere, by a thread blocked in
``waitpid``. One *spare* worker, started ahead and waiting with mofa_kernel
already imported, makes the next start (a restart, most often) cost the
plugin's own import instead of an interpreter's start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._exit import WorkerExit
from ._frames import FAIL, MEMORY_EXIT, META, SPEC, FrameDecoder, encode

if TYPE_CHECKING:
    from mofa_kernel._errors import PluginLoadError

__all__ = [
    "Launched",
    "Prepared",
    "WorkerSpec",
    "discard",
    "end_group",
    "import_failure",
    "kill_now",
    "launch",
    "prepare",
    "set_spare_worker",
    "spares",
    "spec_frame",
    "wait",
]

#: ``-u``: the plugin's prints reach the host's stdout as they happen, not when a buffer fills.
#: ``-c`` rather than ``-m``, dropping the working folder that both put first on ``sys.path``:
#: the worker must not import the kernel, or anything before the plugin, from a folder the
#: host (the ``mofa-kernel`` script, or a program of its own) does not import from; a
#: ``mofa_kernel`` planted there would run in every worker, under the trust lock too. The
#: worker takes the host's ``sys.path`` from its spec before it imports the plugin.
_ARGV = (
    "-u",
    "-c",
    # '' is the working folder (absent under PYTHONSAFEPATH=1 or -P, and then nothing to drop)
    "import sys\nif sys.path[:1] == ['']:\n    del sys.path[0]\n"
    "from mofa_kernel._isolation._worker import main\nmain()",
)


@attrs.frozen
class WorkerSpec:
    """What a worker serves and under which limits; the host never imports ``entry_point``."""

    plugin_id: str
    #: The entry point's value, ``"module:attr"``.
    entry_point: str
    distribution: str | None = None
    group: str = "mofa.plugins"
    #: For messages: the worker names the plugin's origin as the host's discovery would.
    distribution_version: str | None = None
    #: The worker's address-space cap in MiB (``None``: no cap).
    memory_limit: int | None = None
    #: Seconds between SIGTERM and SIGKILL when the host ends a worker.
    grace: float = 1.0
    #: The interpreter that runs the worker.
    python: str = attrs.field(factory=lambda: sys.executable)
    #: The worker's ``sys.path``; by default the host's, so the worker finds what the host would.
    sys_path: tuple[str, ...] = attrs.field(factory=lambda: tuple(sys.path))
    #: The worker's environment (``None``: the host's).
    env: Mapping[str, str] | None = None
    #: The trust lock's verdicts the worker enforces before it imports anything of the
    #: plugin; by default the host's own (:meth:`TrustGuard.snapshot`), so an isolated
    #: plugin runs only the bytes the host verified, as an inline one does.
    trust: tuple[Mapping[str, Any], ...] = attrs.field(factory=lambda: _host_trust())


def _host_trust() -> tuple[Mapping[str, Any], ...]:
    from mofa_kernel._trust_guard import GUARD

    return tuple(GUARD.snapshot())


@attrs.frozen
class Launched:
    """A started worker waiting for its spec: its pid and the host's ends of the two pipes."""

    pid: int
    reads: int
    writes: int
    key: tuple[str, frozenset[tuple[str, str]] | None]


def _key(spec: WorkerSpec) -> tuple[str, frozenset[tuple[str, str]] | None]:
    env = None if spec.env is None else frozenset(spec.env.items())
    return (spec.python, env)


def launch(spec: WorkerSpec) -> Launched:
    """Start a worker process for ``spec``'s interpreter and environment."""
    to_worker, host_writes = os.pipe()
    host_reads, from_worker = os.pipe()
    # The worker's ends go to two numbers above every pipe end, so no dup2 overwrites another.
    child_reads = max(to_worker, host_writes, host_reads, from_worker) + 1
    child_writes = child_reads + 1
    argv = [spec.python, *_ARGV, str(child_reads), str(child_writes)]
    env: Mapping[str, str] = os.environ if spec.env is None else spec.env
    try:
        pid = os.posix_spawn(
            spec.python,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, to_worker, child_reads),
                (os.POSIX_SPAWN_DUP2, from_worker, child_writes),
            ],
            setsid=True,
        )
    except BaseException:
        os.close(host_reads)
        os.close(host_writes)
        raise
    finally:
        os.close(to_worker)
        os.close(from_worker)
    return Launched(pid, host_reads, host_writes, _key(spec))


def spec_frame(spec: WorkerSpec) -> bytes:
    """The first frame a worker reads: which plugin to import, and its cap."""
    return encode(
        [
            SPEC,
            {
                "plugin_id": spec.plugin_id,
                "entry_point": spec.entry_point,
                "distribution": spec.distribution,
                "distribution_version": spec.distribution_version,
                "group": spec.group,
                "memory_limit": spec.memory_limit,
                "sys_path": list(spec.sys_path),
                "trust": list(spec.trust),
            },
        ]
    )


@attrs.frozen
class Prepared:
    """A worker that has imported its plugin, not yet tied to an event loop."""

    launched: Launched
    #: The plugin's metadata (serde JSON) and the hooks it implements.
    metadata: dict[str, Any]
    hooks: tuple[str, ...]


def prepare(spec: WorkerSpec, timeout: float | None) -> Prepared:
    """Start a worker and learn its plugin's metadata without an event loop (discovery is
    synchronous). Raises :class:`~mofa_kernel.PluginLoadError` saying why not."""
    from mofa_kernel._errors import PluginLoadError

    launched = spares.take(spec) or launch(spec)
    spares.replenish(spec)
    label = f"worker of plugin {spec.plugin_id!r}"
    try:
        os.write(launched.writes, spec_frame(spec))
        decoder = FrameDecoder()
        poller = select.poll()
        poller.register(launched.reads, select.POLLIN)
        limit = time.monotonic() + (timeout if timeout is not None else 60.0)
        while True:
            left = limit - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                raise PluginLoadError(
                    f"{label}: no answer within {timeout:g}s", plugin_id=spec.plugin_id
                )
            data = os.read(launched.reads, 1 << 16)
            if not data:
                _, status = os.waitpid(launched.pid, 0)
                ended = WorkerExit.from_status(_status(status), spec.memory_limit, MEMORY_EXIT)
                raise PluginLoadError(
                    f"{label} ended before it reported the plugin: {ended}",
                    plugin_id=spec.plugin_id,
                )
            for message in decoder.feed(data):
                if message[0] == META:
                    return Prepared(launched, message[1], tuple(message[2]))
                if message[0] == FAIL:
                    raise import_failure(spec, message[2])
    except BaseException:
        kill_now(launched)
        raise


def import_failure(spec: WorkerSpec, fault: Mapping[str, Any]) -> PluginLoadError:
    """Why the worker could not import or adapt its plugin: a ``PluginLoadError`` raised
    there names the plugin and its origin itself, in the very words an inline import uses
    (a trust lock refusal included); anything else is prefixed with the worker's name."""
    from mofa_kernel._errors import PluginLoadError

    message = str(fault.get("message") or fault.get("type"))
    if fault.get("type") != "PluginLoadError":
        message = f"worker of plugin {spec.plugin_id!r}: {message}"
    return PluginLoadError(
        message,
        plugin_id=spec.plugin_id,
        distribution=spec.distribution,
        entry_point=spec.entry_point,
    )


def kill_now(launched: Launched) -> None:
    """End a worker at once and reap it, without an event loop."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(launched.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(launched.pid, 0)
    _discard(launched)


async def discard(prepared: Prepared) -> None:
    """End a prepared worker that never served, and its process group."""
    pid = prepared.launched.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _discard(prepared.launched)
    await wait(pid)
    await end_group(pid)


def _status(status: int) -> int:
    """A wait status as asyncio reports it: the exit code, or minus the signal's number."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def wait(pid: int) -> int | None:
    """Wait for child ``pid`` to end and reap it; ``None`` if someone else reaped it first."""
    loop = asyncio.get_running_loop()
    try:
        if hasattr(os, "pidfd_open"):
            handle = os.pidfd_open(pid)
            try:
                ended = loop.create_future()
                loop.add_reader(handle, _settle, ended)
                try:
                    await ended
                finally:
                    loop.remove_reader(handle)
            finally:
                os.close(handle)
            _, status = os.waitpid(pid, 0)  # noqa: ASYNC222 - it has ended: no wait
        else:  # a thread blocked in waitpid: no polling either
            _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
    except (ChildProcessError, ProcessLookupError):
        return None
    return _status(status)


class _Spares:
    """At most one started worker kept waiting for the next plugin to need one."""

    def __init__(self) -> None:
        self.enabled = True
        self._spare: Launched | None = None

    def take(self, spec: WorkerSpec) -> Launched | None:
        """The spare, if it suits ``spec`` and is still alive; the caller now owns it."""
        spare = self._spare
        if spare is None or spare.key != _key(spec):
            return None
        self._spare = None
        try:
            done, _ = os.waitpid(spare.pid, os.WNOHANG)
        except ChildProcessError:
            done = spare.pid
        if done:
            _discard(spare)
            return None
        return spare

    def replenish(self, spec: WorkerSpec) -> None:
        """Start a spare for workers like ``spec``'s, unless one is waiting already."""
        if not self.enabled:
            return
        spare = self._spare
        if spare is not None:
            if spare.key == _key(spec):
                return
            self._spare = None
            self._drop(spare)
        self._spare = launch(spec)

    async def warm(self) -> None:
        """Wait until the spare, if any, has started and imported mofa_kernel."""
        spare = self._spare
        if spare is None:
            return
        loop = asyncio.get_running_loop()
        said = loop.create_future()
        loop.add_reader(spare.reads, _settle, said)
        try:
            await said
        finally:
            loop.remove_reader(spare.reads)

    def clear(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            self._drop(spare)

    async def close(self) -> None:
        """End the spare, if any, and wait until it is gone, and until the spares dropped
        before it have been reaped.

        For a host about to exit: a spare left alone would leave only once
        it reads the end of its pipe, a moment after the host has gone.
        """
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(spare.pid, signal.SIGKILL)  # nothing of a plugin runs in it yet
            _discard(spare)
            await wait(spare.pid)
            await end_group(spare.pid)
        if _reaping:
            await asyncio.gather(*_reaping)

    @staticmethod
    def _drop(spare: Launched) -> None:
        _discard(spare)  # the spare reads end of file and leaves
        with contextlib.suppress(RuntimeError):  # no loop: it stays a zombie until the host exits
            loop = asyncio.get_running_loop()
            task = loop.create_task(wait(spare.pid))
            _reaping.add(task)
            task.add_done_callback(_reaping.discard)


_reaping: set[asyncio.Task[int | None]] = set()


def _discard(spare: Launched) -> None:
    for fd in (spare.reads, spare.writes):
        with contextlib.suppress(OSError):
            os.close(fd)


#: The spare worker of this host process.
spares = _Spares()


def set_spare_worker(enabled: bool) -> None:
    """Keep (the default) or stop keeping a spare worker started ahead of need.

    Without one, every worker start pays for an interpreter and mofa_kernel's
    imports; with one, a worker's stdout and stderr are the host's as they
    were when the spare started.
    """
    spares.enabled = enabled
    if not enabled:
        spares.clear()


def _members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (Linux: read from /proc; else none known)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


async def end_group(pgid: int) -> None:
    """SIGKILL what is left of process group ``pgid`` and wait until it is gone (Linux).

    Elsewhere the group is sent SIGKILL and the function returns at once.
    """
    loop = asyncio.get_running_loop()
    if not hasattr(os, "pidfd_open"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return
    for _ in range(8):  # a member forking while it is killed can need another round
        members = _members(pgid)
        if not members:
            return
        handles = []
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                handles.append(os.pidfd_open(pid))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        try:
            for handle in handles:
                gone = loop.create_future()
                loop.add_reader(handle, _settle, gone)
                try:
                    await gone
                finally:
                    loop.remove_reader(handle)
        finally:
            for handle in handles:
                os.close(handle)
        if not handles:
            return


if sys.platform == "win32":  # pragma: no cover - the wire needs POSIX pipes and sessions
    raise ImportError("process isolation needs a POSIX system")
