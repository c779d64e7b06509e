"""The cache's files: where they live, how they are read and written, what they are keyed on.

Every file is JSON with the :data:`SCHEMA` and the interpreter's
:func:`identity`, written to a temporary name and renamed into place
(:func:`write_json`), so that another process reads a whole old file or a
whole new one; :func:`read_json` ignores any other. Imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping

try:  # hashlib's blake2b, without hashlib loading OpenSSL (a first listing is timed)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_NO_CACHE",
    "SCHEMA",
    "SETTLE_NS",
    "SUFFIX",
    "Stat",
    "blake2b",
    "cache_dir",
    "cache_files",
    "digest_of",
    "enabled",
    "file_stat",
    "identity",
    "prune",
    "read_bytes",
    "read_json",
    "remove",
    "write_json",
]

#: The version of the files' layout; files of any other version are ignored.
SCHEMA: Final = 2  # 2: listing rows carry "isolation"
#: Set to ``1`` (or ``true``, ``yes``, ``on``) to read and write no cache at all.
ENV_NO_CACHE: Final = "MOFA_NO_CACHE"
#: Where the cache lives, instead of the per-user cache folder.
ENV_CACHE_DIR: Final = "MOFA_CACHE_DIR"
#: How long everything in a fingerprint must have been left alone before it is stored.
SETTLE_NS: Final = 3_000_000_000
#: The suffix of every cache file.
SUFFIX: Final = ".json"

_FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})
_STALE_TEMP_NS: Final = 600 * 10**9

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


def digest_of(*parts: str) -> str:
    """A short hash of ``parts``, for file names and fingerprints."""
    h = blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def identity() -> str:
    """The interpreter: a cache made by another one (or another environment) is never read."""
    return "\0".join([sys.implementation.cache_tag or "", sys.executable, sys.prefix, sys.version])


def file_stat(path: str) -> Stat:
    """``path``'s :data:`Stat`, or ``None`` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size, st.st_mode >> 12]


def read_json(path: str) -> dict[str, Any] | None:
    """A cache file's data, or ``None`` if unreadable, of another schema or interpreter."""
    try:
        with open(path, "rb") as file:
            data = json.loads(file.read())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    if data.get("identity") != identity():
        return None
    return data


def write_json(path: str, data: dict[str, Any]) -> bool:
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
        remove(temp)
        return False
    return True


def prune(folder: str, prefix: str, keep: int) -> None:
    """Drop all but the ``keep`` newest ``prefix*.json`` files, and temporary files left behind."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time_ns()
    ours: list[tuple[int, str]] = []
    for name in names:
        path = os.path.join(folder, name)
        stat = file_stat(path)
        if stat is None:
            continue
        if name.endswith(".tmp") and now - stat[0] > _STALE_TEMP_NS:
            remove(path)
        elif name.startswith(prefix) and name.endswith(SUFFIX):
            ours.append((stat[0], path))
    ours.sort(reverse=True)
    for _, path in ours[keep:]:
        remove(path)


def remove(path: str) -> bool:
    """Delete ``path``; whether it was deleted."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def read_bytes(path: str) -> bytes | None:
    """A file's bytes, or ``None`` when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except (OSError, ValueError):
        return None


def cache_files() -> list[tuple[str, int]]:
    """The cache's files (name, size in bytes), sorted by name."""
    folder = cache_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found: list[tuple[str, int]] = []
    for name in names:
        stat = file_stat(os.path.join(folder, name))
        if stat is not None and name.endswith((SUFFIX, ".tmp")):
            found.append((name, stat[3]))
    return found
