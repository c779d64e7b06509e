"""mofa-sample-memory: key-value and conversation memory on SQLite, as a mofa-kernel plugin.

The entry point ``memory`` (group ``mofa.plugins``) names :class:`MemoryPlugin`.
While it runs, other plugins reach it through the shared state key
``"memory.api"`` (a :class:`MemoryAPI`).
"""

from __future__ import annotations

from ._plugin import (
    API_KEY,
    MemoryAPI,
    MemoryPlugin,
    MemorySettings,
    RequestError,
    __version__,
    default_path,
)
from ._store import MemoryStore, Message

__all__ = [
    "API_KEY",
    "MemoryAPI",
    "MemoryPlugin",
    "MemorySettings",
    "MemoryStore",
    "Message",
    "RequestError",
    "__version__",
    "default_path",
]
