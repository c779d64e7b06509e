"""Plugin metadata in the cache: learned when a plugin loads, reused by ``plugins list``.

An entry is kept under the plugin's distribution, version, id and entry
point with the plugin's :func:`plugin_token`: a hash of the distribution's
metadata files and of the plugin's module (for an editable install, the
stats of its package's files too). An entry is used only while its token is
unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping

from ._store import (
    SCHEMA,
    SETTLE_NS,
    SUFFIX,
    blake2b,
    cache_dir,
    digest_of,
    enabled,
    file_stat,
    identity,
    prune,
    read_bytes,
    read_json,
    write_json,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Any, Final

    from mofa_kernel._metadata import PluginMetadata
    from mofa_kernel._source import PluginSource

__all__ = ["MetadataNotes", "lookup_metadata", "plugin_token"]

_TOKEN_FILES: Final = ("RECORD", "METADATA", "PKG-INFO", "entry_points.txt", "requires.txt")
#: Metadata files kept, one per interpreter: throwaway virtualenvs come and go.
_MAX_ENVIRONMENTS: Final = 32
_MAX_METADATA_ENTRIES: Final = 2000
_MAX_PACKAGE_FILES: Final = 2000


def _module_file(module: str, path: str | None) -> str | None:
    """The file of ``module``: ``path`` itself, or found in the folder ``path`` or its ``src``."""
    if path is None:
        return None
    if path.endswith(".py"):
        return path if os.path.isfile(path) else None
    parts = module.split(".")
    for base in (os.path.join(path, "src"), path):
        for candidate in (
            os.path.join(base, *parts) + ".py",
            os.path.join(base, *parts, "__init__.py"),
        ):
            if os.path.isfile(candidate):
                return candidate
    return None


def _package_dir(module_file: str, module: str) -> str | None:
    """The top-level package folder holding ``module_file``, or ``None`` for a lone module."""
    depth = module.count(".")
    if os.path.basename(module_file) == "__init__.py":
        depth += 1
    if depth == 0:
        return None
    folder = module_file
    for _ in range(depth):
        folder = os.path.dirname(folder)
    return folder


def plugin_token(
    *, entry_point: str, path: str | None, metadata_dir: str | None
) -> tuple[str, bool] | None:
    """What a plugin's metadata depends on, as a digest, and whether that digest can be trusted.

    The digest covers the contents of the distribution's metadata files
    (``RECORD``, whose lines carry a hash of every installed file, ``METADATA``,
    ``entry_points.txt``...) and of the plugin's module; for an editable
    install (the module lies outside the distribution's site folder, or the
    metadata is an ``*.egg-info`` of ``setup.py develop``) also the stats of
    every ``.py`` file of its top-level package. The second
    value is false when one of those stats changed too recently to be
    trusted. ``None`` when the module file cannot be found.
    """
    if metadata_dir is None:
        return None
    from mofa_kernel._scanner import entry_point_target

    module = entry_point_target(entry_point)[0]
    module_file = _module_file(module, path)
    if module_file is None:
        return None
    module_file = os.path.abspath(module_file)
    h = blake2b(digest_size=20)
    contents = [(name, os.path.join(metadata_dir, name)) for name in _TOKEN_FILES]
    for label, file in [*contents, (module_file, module_file)]:
        content = read_bytes(file)
        h.update(f"{label}\0{-1 if content is None else len(content)}\0".encode())
        h.update(content or b"")
    settled = True
    site = os.path.dirname(os.path.abspath(metadata_dir))
    if metadata_dir.lower().endswith(".egg-info") or not _within(module_file, site):
        package = _package_dir(module_file, module)
        files = [module_file] if package is None else _python_files(package)
        if files is None:
            return None
        now = time.time_ns()
        for file in files:
            stat = file_stat(file)
            h.update(f"{file}\0{stat}\0".encode("utf-8", "surrogateescape"))
            if stat is None or max(stat[0], stat[1]) >= now - SETTLE_NS:
                settled = False
    return h.hexdigest(), settled


def _within(path: str, folder: str) -> bool:
    """Whether the absolute ``path`` lies in the absolute ``folder``."""
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _python_files(package: str) -> list[str] | None:
    found: list[str] = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        found.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))
        if len(found) > _MAX_PACKAGE_FILES:
            return None
    return found


def _metadata_key(distribution: str | None, version: str | None, pid: str, ep: str) -> str:
    return f"{distribution}\0{version}\0{pid}\0{ep}"


def _metadata_file() -> str:
    return os.path.join(cache_dir(), "metadata-" + digest_of(identity()) + SUFFIX)


def _read_metadata_entries() -> dict[str, Any]:
    data = read_json(_metadata_file())
    entries = data.get("entries") if data is not None else None
    return entries if isinstance(entries, dict) else {}


def lookup_metadata(rows: Iterable[Mapping[str, Any]]) -> list[object]:
    """For each ``plugins list`` row, its cached metadata in serde form, or ``None``.

    A row needs ``id``, ``distribution``, ``distribution_version``,
    ``entry_point``, ``path`` and ``metadata_dir``. An entry is used only if
    the plugin's :func:`plugin_token` is still the one it was stored with.
    """
    rows = list(rows)
    if not rows or not enabled():
        return [None] * len(rows)
    entries = _read_metadata_entries()
    found: list[object] = []
    for row in rows:
        entry = entries.get(
            _metadata_key(
                row["distribution"], row["distribution_version"], row["id"], row["entry_point"]
            )
        )
        if not isinstance(entry, dict):
            found.append(None)
            continue
        token = plugin_token(
            entry_point=row["entry_point"], path=row["path"], metadata_dir=row["metadata_dir"]
        )
        found.append(
            entry.get("data") if token is not None and entry.get("token") == token[0] else None
        )
    return found


class MetadataNotes:
    """Plugin metadata learned while plugins load, saved for ``plugins list``.

    Made with :meth:`before` from the sources about to be imported (their
    tokens are taken before the import, and again at :meth:`save`: a plugin
    whose files changed in between is not recorded). A plugin whose package
    was imported before is skipped, since its code may predate its files.
    Saving never raises for a cache that cannot be written.
    """

    __slots__ = ("_learned", "_tokens")

    def __init__(self, tokens: dict[str, tuple[PluginSource, str]]) -> None:
        self._tokens = tokens
        self._learned: dict[str, PluginMetadata] = {}

    @classmethod
    def before(cls, sources: Iterable[PluginSource]) -> MetadataNotes:
        """Take the token of each source that may be recorded once it is loaded."""
        tokens: dict[str, tuple[PluginSource, str]] = {}
        if not enabled():
            return cls(tokens)
        for source in sources:
            if source.module.partition(".")[0] in sys.modules:
                continue
            token = _source_token(source)
            if token is not None:
                tokens[_source_key(source)] = (source, token)
        return cls(tokens)

    def learned(self, source: PluginSource, metadata: PluginMetadata) -> None:
        """Note ``metadata`` as what ``source`` gave when it was loaded."""
        key = _source_key(source)
        if key in self._tokens:
            self._learned[key] = metadata

    def save(self) -> None:
        """Record what was learned, rewriting the file only if something is new."""
        if not self._learned:
            return
        changed: dict[str, tuple[str, str, PluginMetadata]] = {}
        entries = _read_metadata_entries()
        for key, metadata in self._learned.items():
            source, token = self._tokens[key]
            if _source_token(source) != token:
                continue
            shape = digest_of(repr(metadata))
            entry = entries.get(key)
            if not (
                isinstance(entry, dict)
                and entry.get("token") == token
                and entry.get("shape") == shape
            ):
                changed[key] = (token, shape, metadata)
        if not changed:
            return
        from mofa_kernel._errors import SerializationError
        from mofa_kernel._wire import to_data

        for key, (token, shape, metadata) in changed.items():
            try:
                data = to_data(metadata)
            except (SerializationError, TypeError):
                continue
            entries.pop(key, None)
            entries[key] = {"token": token, "shape": shape, "data": data}
        while len(entries) > _MAX_METADATA_ENTRIES:
            del entries[next(iter(entries))]
        path = _metadata_file()
        if write_json(path, {"schema": SCHEMA, "identity": identity(), "entries": entries}):
            prune(os.path.dirname(path), "metadata-", _MAX_ENVIRONMENTS)


def _source_key(source: PluginSource) -> str:
    return _metadata_key(
        source.distribution, source.distribution_version, source.plugin_id, source.entry_point
    )


def _source_token(source: PluginSource) -> str | None:
    token = plugin_token(
        entry_point=source.entry_point,
        path=None if source.path is None else str(source.path),
        metadata_dir=None if source.metadata_dir is None else str(source.metadata_dir),
    )
    return token[0] if token is not None and token[1] else None
