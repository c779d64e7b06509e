"""Hot reload: watching plugin code, and replacing a plugin's instance while the host runs.

Imported only when a manager reloads or watches (``manager.reload``,
``manager.start_hot_reload``), so that a host without hot reload never
imports watchfiles. See ``docs/hot-reload.md``.
"""

from __future__ import annotations

from ._reloader import RESTART_REQUIRED, STALE, HotReloader

__all__ = ["RESTART_REQUIRED", "STALE", "HotReloader"]
