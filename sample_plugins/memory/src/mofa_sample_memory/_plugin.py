"""The memory plugin: JSON requests in, JSON replies out, a SQLite file underneath."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import attrs

from mofa_kernel import (
    AgentPlugin,
    HotReloadable,
    JSONValue,
    PluginContext,
    PluginInitError,
    PluginMetadata,
    PluginType,
)

from ._store import MemoryStore, Message

__all__ = [
    "API_KEY",
    "MemoryAPI",
    "MemoryPlugin",
    "MemorySettings",
    "RequestError",
    "__version__",
    "default_path",
]

__version__ = "0.1.0"

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Shared-state key under which a running memory plugin publishes its :class:`MemoryAPI`.
API_KEY: Final = "memory.api"


def default_path() -> Path:
    """The database file when the settings give no ``path``: in the user's data folder.

    ``$XDG_DATA_HOME`` or ``~/.local/share`` (Linux and other Unixes),
    ``~/Library/Application Support`` (macOS), ``%LOCALAPPDATA%`` (Windows);
    then ``mofa-kernel/memory.sqlite3``. Never the working directory.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base, "mofa-kernel", "memory.sqlite3")


@attrs.frozen
class MemorySettings:
    """The ``[plugins.memory.settings]`` table."""

    #: The database file (``~`` is expanded); ``None``: :func:`default_path`.
    path: str | None = None


class MemoryAPI:
    """The memory operations as Python calls, for other plugins.

    A running memory plugin publishes one under the shared-state key
    ``"memory.api"``::

        api = await ctx.get_state("memory.api")
        await api.set("answer", 42)
        assert await api.get("answer") == 42
    """

    def __init__(self, plugin: MemoryPlugin) -> None:
        self._plugin = plugin

    async def set(self, key: str, value: JSONValue) -> None:
        await self._plugin.write(MemoryStore.set, key, value)

    async def get(self, key: str, default: JSONValue = None) -> JSONValue:
        found, value = await self._plugin.read(MemoryStore.get, key)
        return value if found else default

    async def contains(self, key: str) -> bool:
        found, _ = await self._plugin.read(MemoryStore.get, key)
        return found

    async def delete(self, key: str) -> bool:
        return await self._plugin.write(MemoryStore.delete, key)

    async def keys(self, prefix: str = "") -> list[str]:
        return await self._plugin.read(MemoryStore.keys, prefix)

    async def append(self, conversation: str, role: str, content: str) -> int:
        return await self._plugin.write(MemoryStore.append, conversation, role, content)

    async def history(self, conversation: str, limit: int | None = None) -> list[Message]:
        return await self._plugin.read(MemoryStore.history, conversation, limit)

    async def clear(self, conversation: str | None = None) -> dict[str, int]:
        return await self._plugin.write(MemoryStore.clear, conversation)


class RequestError(ValueError):
    """A request that cannot be carried out; the message goes into the ``error`` reply."""


class MemoryPlugin(AgentPlugin, HotReloadable):
    """Key-value and conversation memory on a SQLite file.

    ``execute`` takes one JSON request and returns one JSON reply::

        {"op": "set", "key": "city", "value": "Lyon"}  ->  {"ok": true}
        {"op": "get", "key": "city"}  ->  {"ok": true, "found": true, "value": "Lyon"}
        {"op": "get"}  ->  {"ok": false, "error": "get: 'key' is missing"}

    The operations are ``set``, ``get``, ``delete``, ``keys``, ``append``,
    ``history`` and ``clear`` (see the README).

    Settings (:class:`MemorySettings`): ``path``, the database file (default
    :func:`default_path`, in the user's data folder).
    """

    metadata = PluginMetadata(
        id="memory",
        name="Memory",
        plugin_type=PluginType.MEMORY,
        version=__version__,
        description="Key-value and conversation memory on a SQLite file.",
        capabilities=("key-value", "conversation"),
    )

    settings_type = MemorySettings
    ctx: PluginContext  # set by load()

    def __init__(self) -> None:
        self.settings = MemorySettings()
        self.store: MemoryStore | None = None
        self.reads = 0
        self.writes = 0
        self.api = MemoryAPI(self)
        self._operations: Mapping[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "set": self._set,
            "get": self._get,
            "delete": self._delete,
            "keys": self._keys,
            "append": self._append,
            "history": self._history,
            "clear": self._clear,
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def load(self, ctx: PluginContext) -> None:
        await super().load(ctx)
        self.ctx = ctx
        self.settings = ctx.settings

    async def init_plugin(self) -> None:
        await self._open(await asyncio.to_thread(self._database_path))

    def _database_path(self) -> Path:
        """The configured file, else the default one with its folder created."""
        if self.settings.path is not None:
            return Path(self.settings.path).expanduser()
        path = default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PluginInitError(
                f"cannot create {path.parent}: {exc.strerror or exc}", plugin_id=self.plugin_id
            ) from None
        return path

    async def start(self) -> None:
        await self.ctx.set_state(API_KEY, self.api)

    async def stop(self) -> None:
        await self.ctx.remove_state(API_KEY)

    async def unload(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    async def health_check(self) -> bool:
        return await super().health_check() and self.store is not None

    def stats(self) -> dict[str, Any]:
        path = None if self.store is None else str(self.store.path)
        return {"path": path, "reads": self.reads, "writes": self.writes}

    # -- hot reload ------------------------------------------------------------------------

    async def save_state(self) -> object:
        return self.stats()

    async def restore_state(self, state: object) -> None:
        if not isinstance(state, dict):
            return
        self.reads = _count(state.get("reads"))
        self.writes = _count(state.get("writes"))
        # With no explicit path, keep the file the old instance used: the default
        # depends on the environment, which may have changed since.
        old_path = state.get("path")
        keep_old = isinstance(old_path, str) and self.settings.path is None
        if keep_old and (self.store is None or str(self.store.path) != old_path):
            await self.unload()
            await self._open(Path(str(old_path)))

    async def refresh(self) -> None:
        """Reopen the database file, e.g. after it was replaced."""
        if self.store is not None:
            path = self.store.path
            await self.unload()
            await self._open(path)

    async def _open(self, path: Path) -> None:
        try:
            self.store = await asyncio.to_thread(MemoryStore, path)
        except sqlite3.Error as exc:
            raise PluginInitError(f"cannot open {path}: {exc}", plugin_id=self.plugin_id) from None

    # -- store access (used by MemoryAPI) --------------------------------------------------

    async def read(
        self,
        method: Callable[Concatenate[MemoryStore, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run a reading :class:`MemoryStore` method in a worker thread."""
        result = await asyncio.to_thread(method, self._store(), *args, **kwargs)
        self.reads += 1
        return result

    async def write(
        self,
        method: Callable[Concatenate[MemoryStore, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run a writing :class:`MemoryStore` method in a worker thread; committed on return."""
        result = await asyncio.to_thread(method, self._store(), *args, **kwargs)
        self.writes += 1
        return result

    def _store(self) -> MemoryStore:
        if self.store is None:
            raise RuntimeError("memory: the database is closed")
        return self.store

    # -- requests --------------------------------------------------------------------------

    async def execute(self, input: str) -> str:
        try:
            reply = await self._handle(input)
        except RequestError as exc:
            reply = {"ok": False, "error": str(exc)}
        except sqlite3.Error as exc:
            reply = {"ok": False, "error": f"database error: {exc}"}
        return json.dumps(reply)

    async def _handle(self, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise RequestError(f"the request is not valid JSON: {exc}") from None
        if not isinstance(request, dict):
            raise RequestError("the request must be a JSON object with an 'op'")
        op = request.get("op")
        handler = self._operations.get(op) if isinstance(op, str) else None
        if handler is None:
            known = ", ".join(self._operations)
            raise RequestError(f"unknown op {op!r}; expected one of {known}")
        return {"ok": True, **await handler(request)}

    async def _set(self, request: dict[str, Any]) -> dict[str, Any]:
        key = _text(request, "set", "key")
        if "value" not in request:
            raise RequestError("set: 'value' is missing")
        await self.api.set(key, request["value"])
        return {}

    async def _get(self, request: dict[str, Any]) -> dict[str, Any]:
        found, value = await self.read(MemoryStore.get, _text(request, "get", "key"))
        return {"found": found, "value": value}

    async def _delete(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"deleted": await self.api.delete(_text(request, "delete", "key"))}

    async def _keys(self, request: dict[str, Any]) -> dict[str, Any]:
        prefix = _text(request, "keys", "prefix", default="", allow_empty=True)
        return {"keys": await self.api.keys(prefix)}

    async def _append(self, request: dict[str, Any]) -> dict[str, Any]:
        conversation = _text(request, "append", "conversation")
        role = _text(request, "append", "role")
        content = _text(request, "append", "content", allow_empty=True)
        return {"id": await self.api.append(conversation, role, content)}

    async def _history(self, request: dict[str, Any]) -> dict[str, Any]:
        conversation = _text(request, "history", "conversation")
        limit = request.get("limit")
        if limit is not None and not _is_count(limit):
            raise RequestError("history: 'limit' must be a non-negative integer")
        return {"messages": await self.api.history(conversation, limit)}

    async def _clear(self, request: dict[str, Any]) -> dict[str, Any]:
        conversation = None
        if "conversation" in request:
            conversation = _text(request, "clear", "conversation")
        return {"removed": await self.api.clear(conversation)}


def _text(
    request: dict[str, Any],
    op: str,
    field: str,
    *,
    default: str | None = None,
    allow_empty: bool = False,
) -> str:
    if field not in request:
        if default is not None:
            return default
        raise RequestError(f"{op}: {field!r} is missing")
    value = request[field]
    if not isinstance(value, str):
        raise RequestError(f"{op}: {field!r} must be a string")
    if not value and not allow_empty:
        raise RequestError(f"{op}: {field!r} must not be empty")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: object) -> int:
    return value if isinstance(value, int) and _is_count(value) else 0
