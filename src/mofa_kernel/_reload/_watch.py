"""File watching for hot reload: watchfiles in a thread of its own, changes handed to the loop.

watchfiles is imported only here, and this module only when hot reload is
switched on. Our own filter replaces watchfiles' default one, which ignores
every path containing ``.venv`` (where an editable plugin's virtualenv, or
the installed plugins themselves, often live).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["Watcher", "keep_path"]

#: Folders whose contents never matter for reloading.
_IGNORED_DIRS: Final = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"}
)
#: Editor droppings and bytecode.
_IGNORED_SUFFIXES: Final = (".pyc", ".pyo", ".swp", ".swx", ".swo", "~", ".tmp", ".part")

#: The changes of one batch: (watchfiles.Change value, path).
Changes = set[tuple[int, str]]


def keep_path(change: object, path: str) -> bool:
    """The watch filter: drop bytecode, version-control folders and editor temporary files."""
    parts = Path(path).parts
    if any(part in _IGNORED_DIRS for part in parts):
        return False
    name = parts[-1] if parts else ""
    return not (name.endswith(_IGNORED_SUFFIXES) or name.startswith(".#") or name == "4913")


class Watcher:
    """Watches ``paths`` (recursively or not) and calls ``on_changes`` in the event loop.

    :meth:`start` returns once the operating system's watches are in place,
    so no change made after it is missed. ``on_failure`` is called in the
    loop if the watcher dies (a watched folder vanished while arming, say).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        recursive: bool,
        on_changes: Callable[[Changes], None],
        on_failure: Callable[[BaseException], None],
        step_ms: int,
        name: str,
    ) -> None:
        self.paths = tuple(paths)
        self.recursive = recursive
        self._on_changes = on_changes
        self._on_failure = on_failure
        self._step_ms = step_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start watching; return once armed. Raises what arming raised (a missing folder)."""
        try:
            import watchfiles  # noqa: F401 - here, so that a missing install is said at once
        except ImportError as exc:
            raise ModuleNotFoundError(
                "hot reload watches files with watchfiles, which is not installed "
                "(pip install watchfiles)"
            ) from exc
        self._loop = asyncio.get_running_loop()
        self._armed = self._loop.create_future()
        self._thread.start()
        await self._armed

    async def stop(self) -> None:
        """Stop watching and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _post(self, callback: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            self._stop.set()  # the loop closed under us: nobody is listening any more

    def _arm_done(self, exc: BaseException | None) -> None:
        armed = self._armed
        if armed is None or armed.done():
            if exc is not None:
                self._on_failure(exc)
            return
        if exc is None:
            armed.set_result(None)
        else:
            armed.set_exception(exc)

    def _run(self) -> None:
        import watchfiles

        armed = False
        try:
            for changes in watchfiles.watch(
                *self.paths,
                watch_filter=keep_path,
                debounce=max(self._step_ms * 10, 50),
                step=self._step_ms,
                stop_event=self._stop,
                # A first empty yield after this long tells us the watches are in place.
                rust_timeout=50,
                yield_on_timeout=True,
                raise_interrupt=False,
                recursive=self.recursive,
                ignore_permission_denied=True,
            ):
                if not armed:
                    armed = True
                    self._post(self._arm_done, None)
                if changes and not self._stop.is_set():
                    self._post(self._on_changes, {(int(c), p) for c, p in changes})
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which reports it
            self._post(self._arm_done, exc)
            return
        if not armed:
            self._post(self._arm_done, None)
