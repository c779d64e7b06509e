"""The on-disk cache behind fast discovery and a fast ``mofa-kernel plugins list``.

Nothing read from the cache is used before it is checked against the
environment as it is now:

- A **scan** (what :func:`mofa_kernel._discovery.scan_with_problems` found) is
  reused only while the *fingerprint* is unchanged: the interpreter,
  ``sys.path``, the stat (mtime, ctime, inode, size) of every ``sys.path``
  entry, and the stat of the metadata of every distribution the scan
  reported on and of every ``*.egg-info``. Installers add, remove and replace
  whole ``*.dist-info`` folders, which changes their directory's stat; an
  ``*.egg-info`` can change in place, so its files are watched one by one.
  A fingerprint is stored only when nothing in it changed during the last
  :data:`SETTLE_NS` nanoseconds: a later change then cannot carry the same
  timestamps, however coarse the file system's clock (git's "racily clean"
  rule). Where there is any doubt (a custom distribution finder, a
  ``sys.path`` entry that is not a path) nothing is cached.
- A **listing** (the rows of ``plugins list``) is stored beside the scan it
  was made from, keyed by every input the command reads: the configuration
  files' contents, the working directory and the ``MOFA_*`` variables.
- Plugin **metadata** is learned whenever a plugin is loaded and kept under
  its distribution, version, id and entry point with a hash of the
  distribution's metadata files and the plugin's module (for an editable
  install, the stats of its package's files too).

Each kind lives in its own JSON files in :func:`cache_dir`, written to a
temporary name and renamed into place, so that another process reads a whole
old file or a whole new one; a file that cannot be read, or has another
:data:`SCHEMA`, is ignored and rewritten. ``MOFA_NO_CACHE=1`` switches it all
off. This module imports nothing heavy: the command line's fast path uses it
alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Any, Final

    from ._discovery import PluginSource
    from ._metadata import PluginMetadata

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_NO_CACHE",
    "SCHEMA",
    "SETTLE_NS",
    "MetadataNotes",
    "ScanProbe",
    "cache_dir",
    "cache_files",
    "clear",
    "enabled",
    "listing_inputs",
    "lookup_metadata",
    "plugin_token",
    "probe",
    "store_listing",
]

#: The version of the files' layout; files of any other version are ignored.
SCHEMA: Final = 1
#: Set to ``1`` (or ``true``, ``yes``, ``on``) to read and write no cache at all.
ENV_NO_CACHE: Final = "MOFA_NO_CACHE"
#: Where the cache lives, instead of the per-user cache folder.
ENV_CACHE_DIR: Final = "MOFA_CACHE_DIR"
#: How long everything in a fingerprint must have been left alone before it is stored.
SETTLE_NS: Final = 3_000_000_000

_FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})
_DIST_INFO_FILES: Final = ("METADATA", "entry_points.txt")
_EGG_INFO_FILES: Final = ("PKG-INFO", "entry_points.txt", "requires.txt")
_TOKEN_FILES: Final = ("RECORD", "METADATA", "PKG-INFO", "entry_points.txt", "requires.txt")
_MAX_SCAN_FILES: Final = 64
#: Metadata files kept, one per interpreter: throwaway virtualenvs come and go.
_MAX_ENVIRONMENTS: Final = 32
_MAX_LISTINGS: Final = 8
_MAX_METADATA_ENTRIES: Final = 2000
_MAX_PACKAGE_FILES: Final = 2000
_STALE_TEMP_NS: Final = 600 * 10**9
_SUFFIX: Final = ".json"

#: ``[mtime_ns, ctime_ns, inode, size, file type]``, or ``None`` for a path that cannot be stat'ed.
Stat = list[int] | None


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the cache may be used: ``MOFA_NO_CACHE`` is unset or a false word (``0``, ``no``)."""
    value = (os.environ if environ is None else environ).get(ENV_NO_CACHE)
    return value is None or value.strip().lower() in _FALSE_WORDS


def cache_dir(environ: Mapping[str, str] | None = None) -> str:
    """``$MOFA_CACHE_DIR``, else the per-user cache folder's ``mofa-kernel``.

    The per-user folder is ``$XDG_CACHE_HOME`` or ``~/.cache`` (Linux and
    other Unixes), ``~/Library/Caches`` (macOS), ``%LOCALAPPDATA%`` (Windows).
    """
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_CACHE_DIR)
    if explicit:
        return os.path.abspath(explicit)
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "mofa-kernel")


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _identity() -> str:
    """The interpreter: a cache made by another one (or another environment) is never read."""
    return "\0".join([sys.implementation.cache_tag or "", sys.executable, sys.prefix, sys.version])


def _stat(path: str) -> Stat:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size, st.st_mode >> 12]


def _newest(stats: Iterable[Stat]) -> int:
    return max((max(s[0], s[1]) for s in stats if s is not None), default=0)


def _unchanged(watched: object) -> bool:
    if not isinstance(watched, list):
        return False
    for item in watched:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return False
        if _stat(item[0]) != item[1]:
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


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as file:
            data = json.loads(file.read())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    if data.get("identity") != _identity():
        return None
    return data


def _write_json(path: str, data: dict[str, Any]) -> bool:
    """Write ``data`` to ``path`` atomically (a temporary file renamed into place)."""
    folder = os.path.dirname(path)
    temp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except OSError:
        _remove(temp)
        return False
    return True


def _prune(folder: str, prefix: str, keep: int) -> None:
    """Drop all but the ``keep`` newest ``prefix*.json`` files, and temporary files left behind."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time_ns()
    ours: list[tuple[int, str]] = []
    for name in names:
        path = os.path.join(folder, name)
        stat = _stat(path)
        if stat is None:
            continue
        if name.endswith(".tmp") and now - stat[0] > _STALE_TEMP_NS:
            _remove(path)
        elif name.startswith(prefix) and name.endswith(_SUFFIX):
            ours.append((stat[0], path))
    ours.sort(reverse=True)
    for _, path in ours[keep:]:
        _remove(path)


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


# -- scans and listings ----------------------------------------------------------------------


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
        self._fingerprint: list[Any] = [[entry, _stat(entry)] for entry in entries]
        name = "scan-" + _digest(_identity(), group, *entries) + _SUFFIX
        self._file = os.path.join(cache_dir(), name)

    def _valid(self) -> dict[str, Any] | None:
        data = _read_json(self._file)
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
        watched = [[path, _stat(path)] for path in sorted(paths)]
        stats = [stat for _, stat in self._fingerprint] + [stat for _, stat in watched]
        if _newest(stats) >= self._started - SETTLE_NS:
            return None
        digest = _digest(json.dumps([self._fingerprint, watched]))
        data = {
            "schema": SCHEMA,
            "identity": _identity(),
            "group": self._group,
            "fingerprint": self._fingerprint,
            "watched": watched,
            "digest": digest,
            "scan": scan,
            "listings": {},
        }
        if _write_json(self._file, data):
            _prune(os.path.dirname(self._file), "scan-", _MAX_SCAN_FILES)
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
    return _digest(json.dumps([config, cwd, env, files]))


def _file_digest(path: str) -> str | None:
    content = _read_bytes(path)
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
    return _write_json(current._file, data)


# -- plugin metadata -------------------------------------------------------------------------


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except (OSError, ValueError):
        return None


def _module_name(entry_point: str) -> str:
    return entry_point.partition(":")[0].split("[", 1)[0].strip()


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
    module = _module_name(entry_point)
    module_file = _module_file(module, path)
    if module_file is None:
        return None
    module_file = os.path.abspath(module_file)
    h = hashlib.blake2b(digest_size=20)
    contents = [(name, os.path.join(metadata_dir, name)) for name in _TOKEN_FILES]
    for label, file in [*contents, (module_file, module_file)]:
        content = _read_bytes(file)
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
            stat = _stat(file)
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
    return os.path.join(cache_dir(), "metadata-" + _digest(_identity()) + _SUFFIX)


def _read_metadata_entries() -> dict[str, Any]:
    data = _read_json(_metadata_file())
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
            if _module_name(source.entry_point).partition(".")[0] in sys.modules:
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
            shape = _digest(repr(metadata))
            entry = entries.get(key)
            if not (
                isinstance(entry, dict)
                and entry.get("token") == token
                and entry.get("shape") == shape
            ):
                changed[key] = (token, shape, metadata)
        if not changed:
            return
        from ._errors import SerializationError
        from ._serde import to_data

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
        if _write_json(path, {"schema": SCHEMA, "identity": _identity(), "entries": entries}):
            _prune(os.path.dirname(path), "metadata-", _MAX_ENVIRONMENTS)


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


# -- inspection --------------------------------------------------------------------------------


def cache_files() -> list[tuple[str, int]]:
    """The cache's files (name, size in bytes), sorted by name."""
    folder = cache_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found: list[tuple[str, int]] = []
    for name in names:
        stat = _stat(os.path.join(folder, name))
        if stat is not None and name.endswith((_SUFFIX, ".tmp")):
            found.append((name, stat[3]))
    return found


def clear() -> int:
    """Delete every cache file (of every interpreter); return how many were deleted."""
    _memo.clear()
    folder = cache_dir()
    return sum(_remove(os.path.join(folder, name)) for name, _ in cache_files())
