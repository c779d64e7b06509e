"""Process isolation: a plugin served by a worker process of its own.

The host side is :class:`IsolatedPlugin`, a plugin whose every call is an
RPC to the worker (``python -m mofa_kernel._isolation._worker``), so the
manager drives it like any other. A worker's unasked end is reported as a
:class:`WorkerExit`; :class:`RestartPolicy` decides whether the plugin comes
back. The names load lazily, so that a worker importing its own module does
not pay for the host's side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._exit import ExitCause, RestartPolicy, WorkerExit
    from ._host import RemoteFault, WorkerProcess
    from ._proxy import IsolatedPlugin
    from ._spawn import WorkerSpec

__all__ = [
    "ExitCause",
    "IsolatedPlugin",
    "RemoteFault",
    "RestartPolicy",
    "WorkerExit",
    "WorkerProcess",
    "WorkerSpec",
]

_HOMES: Final = {
    "ExitCause": "._exit",
    "RestartPolicy": "._exit",
    "WorkerExit": "._exit",
    "RemoteFault": "._host",
    "WorkerProcess": "._host",
    "WorkerSpec": "._spawn",
    "IsolatedPlugin": "._proxy",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
