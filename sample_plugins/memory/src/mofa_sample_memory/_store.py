"""Key-value pairs and conversations in one SQLite database file."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from mofa_kernel import JSONValue

__all__ = ["MemoryStore", "Message"]

#: One conversation message as returned by :meth:`MemoryStore.history`.
Message = dict[str, JSONValue]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    created_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation, id);
"""


class MemoryStore:
    """A blocking, thread-safe store on one SQLite file.

    Every write is committed before its method returns. The database runs in
    WAL mode with ``synchronous=FULL``: each commit is fsynced to the WAL
    file, so a write that has returned survives the process being killed
    (and the machine losing power). ``NORMAL`` would survive a killed
    process too, but not a power cut; the sample picks the stronger promise.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().resolve()
        self._lock = threading.Lock()
        # isolation_level=None: each statement commits on its own unless we BEGIN.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def set(self, key: str, value: JSONValue) -> None:
        """Store ``value`` (JSON data) under ``key``, replacing any previous value."""
        text = json.dumps(value, allow_nan=False)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, text, time.time()),
            )

    def get(self, key: str) -> tuple[bool, JSONValue]:
        """``(True, value)`` for a stored key, ``(False, None)`` otherwise."""
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return (False, None) if row is None else (True, json.loads(row[0]))

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        with self._transaction() as db:
            return db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    def keys(self, prefix: str = "") -> list[str]:
        """The stored keys that start with ``prefix``, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM kv WHERE substr(key, 1, length(?)) = ? ORDER BY key",
                (prefix, prefix),
            ).fetchall()
        return [row[0] for row in rows]

    def append(self, conversation: str, role: str, content: str) -> int:
        """Add a message at the end of ``conversation``; its id."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (conversation, role, content, created_at)"
                " VALUES (?, ?, ?, ?)",
                (conversation, role, content, time.time()),
            )
        assert cursor.lastrowid is not None  # always set after an INSERT
        return cursor.lastrowid

    def history(self, conversation: str, limit: int | None = None) -> list[Message]:
        """The last ``limit`` messages of ``conversation`` (all by default), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, content, created_at FROM messages WHERE conversation = ?"
                " ORDER BY id DESC LIMIT ?",
                (conversation, -1 if limit is None else limit),
            ).fetchall()
        return [
            {"id": id_, "role": role, "content": content, "time": created_at}
            for id_, role, content, created_at in reversed(rows)
        ]

    def clear(self, conversation: str | None = None) -> dict[str, int]:
        """Remove one conversation, or everything; how many keys and messages went."""
        with self._transaction() as db:
            if conversation is not None:
                sql = "DELETE FROM messages WHERE conversation = ?"
                messages = db.execute(sql, (conversation,)).rowcount
                return {"keys": 0, "messages": messages}
            keys = db.execute("DELETE FROM kv").rowcount
            messages = db.execute("DELETE FROM messages").rowcount
            return {"keys": keys, "messages": messages}
