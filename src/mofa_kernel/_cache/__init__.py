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
off. This package imports nothing heavy: the command line's fast path uses it
alone.

The files and their format are in ``_store``, scans and listings in
``_scans``, plugin metadata in ``_plugins``; this module gathers their
public names (those of ``_plugins`` on first use).
"""

from ._scans import ScanProbe, clear, forget_scans, listing_inputs, probe, store_listing
from ._store import (
    ENV_CACHE_DIR,
    ENV_NO_CACHE,
    SCHEMA,
    SETTLE_NS,
    cache_dir,
    cache_files,
    enabled,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from ._plugins import MetadataNotes, lookup_metadata, plugin_token

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
    "forget_scans",
    "listing_inputs",
    "lookup_metadata",
    "plugin_token",
    "probe",
    "store_listing",
]


#: Plugin metadata is imported on first use: replaying a listing never needs it.
_PLUGINS = frozenset({"MetadataNotes", "lookup_metadata", "plugin_token"})


def __getattr__(name: str) -> object:
    if name not in _PLUGINS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _plugins

    value = getattr(_plugins, name)
    globals()[name] = value
    return value
