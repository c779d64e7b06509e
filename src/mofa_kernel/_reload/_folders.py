"""Which folders hot reload watches, with two watchers.

One watcher is recursive, over the plugins' package folders (it sees edits);
the other is not, over the folders that hold them and, when installs are
watched, the site folders (it sees packages replaced whole, single-module
plugins saved by renaming, and distributions installed or removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from ._code import CodeUnit
from ._watch import Changes, Watcher

__all__ = ["WatchedFolders", "site_folders"]


def site_folders() -> set[Path]:
    """Where distributions can be installed for this interpreter: sys.path and site folders."""
    candidates: list[str] = [entry for entry in sys.path if entry]
    with contextlib.suppress(AttributeError):  # some embedded interpreters lack these
        candidates += site.getsitepackages()
        candidates.append(site.getusersitepackages())
    for key in ("purelib", "platlib"):
        with contextlib.suppress(KeyError):
            candidates.append(sysconfig.get_paths()[key])
    return {Path(p).absolute() for p in candidates if os.path.isdir(p)}


def _minimal(folders: Iterable[Path]) -> tuple[Path, ...]:
    """``folders`` without those inside another one (a recursive watch covers them)."""
    ordered = sorted(set(folders), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for folder in ordered:
        if not any(parent in folder.parents for parent in kept):
            kept.append(folder)
    return tuple(sorted(kept))


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return -1


@attrs.define
class _Watched:
    watcher: Watcher | None = None
    paths: tuple[Path, ...] = ()


class WatchedFolders:
    """The two watchers, armed over the folders of the given code units."""

    def __init__(
        self,
        *,
        on_code: Callable[[Changes], None],
        on_folders: Callable[[Changes], None],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self._on_code = on_code
        self._on_folders = on_folders
        self._on_failure = on_failure
        self._roots = _Watched()
        self._parents = _Watched()
        self._inodes: dict[Path, int] = {}
        self.lock = asyncio.Lock()

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(sorted({*self._roots.paths, *self._parents.paths}))

    def replaced(self, path: Path) -> bool:
        """Whether the package folder ``path`` was replaced whole since it was armed."""
        return _inode(path) != self._inodes.get(path)

    async def arm(
        self, units: list[CodeUnit], *, watch_installs: bool, rearm_roots: bool = False
    ) -> None:
        """(Re)start the watchers whose folders changed; ``rearm_roots`` restarts it anyway."""
        roots = _minimal(d for unit in units for d in unit.dirs if d.is_dir())
        parents = {d.parent for unit in units for d in unit.dirs}
        parents.update(f.parent for unit in units for f in unit.files)
        if watch_installs:
            parents.update(site_folders())
        parent_paths = tuple(sorted(p for p in parents if p.is_dir()))
        if rearm_roots or roots != self._roots.paths:
            await self._restart(self._roots, roots, recursive=True)
            self._inodes = {root: _inode(root) for root in roots}
        if parent_paths != self._parents.paths:
            await self._restart(self._parents, parent_paths, recursive=False)

    async def stop(self) -> None:
        for watched in (self._roots, self._parents):
            if watched.watcher is not None:
                await watched.watcher.stop()
            watched.watcher, watched.paths = None, ()

    async def _restart(
        self, watched: _Watched, paths: tuple[Path, ...], *, recursive: bool
    ) -> None:
        if watched.watcher is not None:
            await watched.watcher.stop()
            watched.watcher = None
        watched.paths = paths
        if not paths:
            return
        watcher = Watcher(
            paths,
            recursive=recursive,
            on_changes=self._on_code if recursive else self._on_folders,
            on_failure=self._on_failure,
            step_ms=10 if recursive else 50,
            name="mofa-watch-code" if recursive else "mofa-watch-folders",
        )
        watched.watcher = watcher
        await watcher.start()
