"""Scans and listings in the cache: a discovery scan reused while the installation is unchanged.

A **scan** (what :func:`mofa_kernel._discovery.scan_with_problems` found) is
reused only while its *fingerprint* is unchanged (see the package's
docstring); a **listing** (the rows of ``plugins list``) is stored beside the
scan it was made from, keyed by :func:`listing_inputs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable

from ._store import (
    SCHEMA,
    SETTLE_NS,
    SUFFIX,
    Stat,
    cache_dir,
    cache_files,
    digest_of,
    enabled,
    file_stat,
    identity,
    prune,
    read_bytes,
    read_json,
    remove,
    write_json,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = [
    "ScanProbe",
    "clear",
    "forget_scans",
    "listing_inputs",
    "probe",
    "store_listing",
]

_DIST_INFO_FILES: Final = ("METADATA", "entry_points.txt")
_EGG_INFO_FILES: Final = ("PKG-INFO", "entry_points.txt", "requires.txt")
_MAX_SCAN_FILES: Final = 64
_MAX_LISTINGS: Final = 8


def _newest(stats: Iterable[Stat]) -> int:
    return max((max(s[0], s[1]) for s in stats if s is not None), default=0)


def _unchanged(watched: object) -> bool:
    if not isinstance(watched, list):
        return False
    for item in watched:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return False
        if file_stat(item[0]) != item[1]:
            return False
    return True


def _path_entries() -> list[str] | None:
    """``sys.path`` as absolute paths, or ``None`` when an entry is not a path."""
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    entries: list[str] = []
    items: list[object] = list(sys.path)
    for item in items:
        entry = os.fspath(item) if isinstance(item, os.PathLike) else item
        if not isinstance(entry, str):
            return None  # bytes, or anything else importlib.metadata may read differently
        entries.append(entry if os.path.isabs(entry) else os.path.join(cwd, entry))
    return entries


def _only_path_finder() -> bool:
    """Whether ``importlib.metadata`` finds distributions on ``sys.path`` alone."""
    from importlib.machinery import PathFinder

    return not any(
        finder is not PathFinder and callable(getattr(finder, "find_distributions", None))
        for finder in sys.meta_path
    )


class _Memo:
    __slots__ = ("digest", "fingerprint", "value", "watched")

    def __init__(self, fingerprint: list[Any], watched: list[Any], digest: str, value: object):
        self.fingerprint = fingerprint
        self.watched = watched
        self.digest = digest
        self.value = value


#: The last scan read or written per cache file, decoded: a second scan in one process
#: costs only the stats that validate it.
_memo: dict[str, _Memo] = {}


class ScanProbe:
    """The environment as it is now, for one entry-point group: reads and stores its scan.

    Made by :func:`probe` *before* scanning, so that whatever changes during
    the scan leaves the stored fingerprint behind the truth (a miss later),
    never ahead of it.
    """

    __slots__ = ("_entries", "_file", "_fingerprint", "_group", "_started")

    def __init__(self, group: str, entries: list[str], started: int) -> None:
        self._group = group
        self._entries = entries
        self._started = started
        self._fingerprint: list[Any] = [[entry, file_stat(entry)] for entry in entries]
        name = "scan-" + digest_of(identity(), group, *entries) + SUFFIX
        self._file = os.path.join(cache_dir(), name)

    def _valid(self) -> dict[str, Any] | None:
        data = read_json(self._file)
        if data is None or data.get("group") != self._group:
            return None
        if data.get("fingerprint") != self._fingerprint or not _unchanged(data.get("watched")):
            return None
        return data

    def load(self, decode: Callable[[Any], object]) -> tuple[object, str] | None:
        """The stored scan decoded by ``decode`` and its fingerprint's digest, if still valid.

        ``decode`` raising ``TypeError``, ``KeyError``, ``IndexError`` or
        ``ValueError`` (a damaged file) counts as a miss.
        """
        memo = _memo.get(self._file)
        if memo is not None and memo.fingerprint == self._fingerprint:
            if _unchanged(memo.watched):
                return memo.value, memo.digest
            del _memo[self._file]
        data = self._valid()
        if data is None or not isinstance(data.get("digest"), str):
            return None
        try:
            value = decode(data["scan"])
        except (TypeError, KeyError, IndexError, ValueError):
            return None
        _memo[self._file] = _Memo(self._fingerprint, data["watched"], data["digest"], value)
        return value, data["digest"]

    def load_listing(self, inputs: str) -> dict[str, Any] | None:
        """The stored listing for ``inputs`` (see :func:`listing_inputs`), if still valid."""
        data = self._valid()
        listings = data.get("listings") if data is not None else None
        listing = listings.get(inputs) if isinstance(listings, dict) else None
        return listing if isinstance(listing, dict) else None

    def store(self, scan: object, watch: Iterable[str], value: object = None) -> str | None:
        """Store ``scan`` (JSON data) with the stats of ``watch``; return the fingerprint's digest.

        ``watch`` holds the metadata folders the scan read (``*.dist-info``,
        ``*.egg-info``). Returns ``None``, storing nothing, when anything in
        the fingerprint changed too recently to be trusted. ``value`` is the
        decoded form to remember for this process.
        """
        paths: set[str] = set()
        for folder in watch:
            paths.add(folder)
            paths.update(os.path.join(folder, name) for name in _metadata_files(folder))
        paths.update(self._egg_infos())
        watched = [[path, file_stat(path)] for path in sorted(paths)]
        stats = [stat for _, stat in self._fingerprint] + [stat for _, stat in watched]
        if _newest(stats) >= self._started - SETTLE_NS:
            return None
        digest = digest_of(json.dumps([self._fingerprint, watched]))
        data = {
            "schema": SCHEMA,
            "identity": identity(),
            "group": self._group,
            "fingerprint": self._fingerprint,
            "watched": watched,
            "digest": digest,
            "scan": scan,
            "listings": {},
        }
        if write_json(self._file, data):
            prune(os.path.dirname(self._file), "scan-", _MAX_SCAN_FILES)
        if value is not None:
            _memo[self._file] = _Memo(self._fingerprint, watched, digest, value)
        return digest

    def _egg_infos(self) -> list[str]:
        """Every ``*.egg-info`` on ``sys.path``, and its files: they may change in place."""
        found: list[str] = []
        for entry in self._entries:
            if entry.lower().endswith(".egg"):
                found.append(os.path.join(entry, "EGG-INFO"))
                continue
            try:
                names = os.listdir(entry)
            except OSError:
                continue
            found.extend(os.path.join(entry, n) for n in names if n.lower().endswith(".egg-info"))
        paths: list[str] = []
        for folder in found:
            paths.append(folder)
            paths.extend(os.path.join(folder, name) for name in _EGG_INFO_FILES)
        return paths


def _metadata_files(folder: str) -> tuple[str, ...]:
    return _DIST_INFO_FILES if folder.lower().endswith(".dist-info") else _EGG_INFO_FILES


def probe(group: str) -> ScanProbe | None:
    """A :class:`ScanProbe` of the environment now, or ``None`` when no cache may be used."""
    if not enabled():
        return None
    started = time.time_ns()
    entries = _path_entries()
    if entries is None or not _only_path_finder():
        return None
    return ScanProbe(group, entries, started)


def listing_inputs(config: str | None) -> str:
    """A digest of every input of ``plugins list`` besides the installed distributions.

    ``config`` is the ``--config`` argument. The digest covers it, the working
    directory, every ``MOFA_*`` variable and the contents of each file that
    could be the configuration (``--config``, ``$MOFA_CONFIG``, ``./mofa.toml``).
    """
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("MOFA_"))
    files: list[list[str | None]] = []
    for candidate in (config, os.environ.get("MOFA_CONFIG"), "mofa.toml"):
        if candidate:
            path = os.path.join(cwd, candidate)
            files.append([path, _file_digest(path)])
    return digest_of(json.dumps([config, cwd, env, files]))


def _file_digest(path: str) -> str | None:
    content = read_bytes(path)
    return None if content is None else hashlib.blake2b(content, digest_size=16).hexdigest()


def store_listing(group: str, digest: str | None, inputs: str, listing: dict[str, Any]) -> bool:
    """Keep ``listing`` beside the stored scan whose fingerprint digest is ``digest``.

    Nothing is stored unless that scan is the one on disk and still valid, so
    that a listing can never outlive the installation it describes.
    """
    if digest is None:
        return False
    current = probe(group)
    if current is None:
        return False
    data = current._valid()
    if data is None or data.get("digest") != digest:
        return False
    listings = data.get("listings")
    if not isinstance(listings, dict):
        listings = {}
    listings.pop(inputs, None)
    listings[inputs] = listing
    while len(listings) > _MAX_LISTINGS:
        del listings[next(iter(listings))]
    data["listings"] = listings
    return write_json(current._file, data)


def forget_scans() -> None:
    """Forget the scans this process remembers, as a new process starts: the next one is read
    from its file."""
    _memo.clear()


def clear() -> int:
    """Delete every cache file (of every interpreter); return how many were deleted."""
    forget_scans()
    folder = cache_dir()
    return sum(remove(os.path.join(folder, name)) for name, _ in cache_files())
