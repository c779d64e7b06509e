"""The memory plugin driven by a real PluginManager, on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mofa_sample_memory import API_KEY, MemoryAPI, MemoryPlugin, default_path

from mofa_kernel import (
    AgentPlugin,
    PluginConfig,
    PluginManager,
    PluginMetadata,
    PluginState,
    PluginType,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.sqlite3"


@pytest.fixture
async def manager(db_path: Path) -> AsyncIterator[PluginManager]:
    async with PluginManager() as manager:
        manager.register(MemoryPlugin(), config=PluginConfig({"path": str(db_path)}))
        report = await manager.start_all()
        assert report.ok, report.outcomes
        yield manager


async def ask(manager: PluginManager, **request: Any) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(await manager.execute("memory", json.dumps(request)))
    return reply


def test_metadata() -> None:
    meta = MemoryPlugin().metadata
    assert meta.id == "memory"
    assert meta.plugin_type == PluginType.MEMORY


async def test_key_value_operations(manager: PluginManager) -> None:
    assert await ask(manager, op="set", key="city", value="Lyon") == {"ok": True}
    assert await ask(manager, op="set", key="cities", value=["Lyon", {"n": 2}]) == {"ok": True}
    assert await ask(manager, op="get", key="city") == {"ok": True, "found": True, "value": "Lyon"}
    assert (await ask(manager, op="get", key="cities"))["value"] == ["Lyon", {"n": 2}]
    assert await ask(manager, op="get", key="nope") == {"ok": True, "found": False, "value": None}
    assert await ask(manager, op="keys") == {"ok": True, "keys": ["cities", "city"]}
    assert await ask(manager, op="keys", prefix="city") == {"ok": True, "keys": ["city"]}
    assert await ask(manager, op="set", key="city", value=None) == {"ok": True}
    assert await ask(manager, op="get", key="city") == {"ok": True, "found": True, "value": None}
    assert await ask(manager, op="delete", key="city") == {"ok": True, "deleted": True}
    assert await ask(manager, op="delete", key="city") == {"ok": True, "deleted": False}


async def test_key_prefix_is_literal(manager: PluginManager) -> None:
    for key in ("a%b", "a_b", "axb"):
        await ask(manager, op="set", key=key, value=1)
    assert (await ask(manager, op="keys", prefix="a%"))["keys"] == ["a%b"]
    assert (await ask(manager, op="keys", prefix="a_"))["keys"] == ["a_b"]


async def test_conversation_operations(manager: PluginManager) -> None:
    first = await ask(manager, op="append", conversation="c1", role="user", content="hello")
    await ask(manager, op="append", conversation="c1", role="assistant", content="hi!")
    await ask(manager, op="append", conversation="c2", role="user", content="other")
    await ask(manager, op="append", conversation="c1", role="user", content="")
    assert first["ok"] is True
    assert isinstance(first["id"], int)

    history = await ask(manager, op="history", conversation="c1")
    assert [(m["role"], m["content"]) for m in history["messages"]] == [
        ("user", "hello"),
        ("assistant", "hi!"),
        ("user", ""),
    ]
    assert history["messages"][0]["id"] == first["id"]
    last_two = await ask(manager, op="history", conversation="c1", limit=2)
    assert [m["content"] for m in last_two["messages"]] == ["hi!", ""]
    assert (await ask(manager, op="history", conversation="none"))["messages"] == []

    cleared = await ask(manager, op="clear", conversation="c1")
    assert cleared == {"ok": True, "removed": {"keys": 0, "messages": 3}}
    assert (await ask(manager, op="history", conversation="c2"))["messages"] != []


async def test_clear_everything(manager: PluginManager) -> None:
    await ask(manager, op="set", key="k", value=1)
    await ask(manager, op="append", conversation="c", role="user", content="x")
    assert await ask(manager, op="clear") == {"ok": True, "removed": {"keys": 1, "messages": 1}}
    assert (await ask(manager, op="keys"))["keys"] == []


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        ("not json", "the request is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[1, 2]", "the request must be a JSON object with an 'op'"),
        (
            '{"key": "k"}',
            "unknown op None; expected one of set, get, delete, keys, append, history, clear",
        ),
        (
            '{"op": "fly"}',
            "unknown op 'fly'; expected one of set, get, delete, keys, append, history, clear",
        ),
        ('{"op": "get"}', "get: 'key' is missing"),
        ('{"op": "get", "key": 3}', "get: 'key' must be a string"),
        ('{"op": "get", "key": ""}', "get: 'key' must not be empty"),
        ('{"op": "set", "key": "k"}', "set: 'value' is missing"),
        (
            '{"op": "set", "key": "k", "value": NaN}',
            "the request is not valid JSON: NaN is not a JSON number",
        ),
        ('{"op": "append", "conversation": "c", "role": "user"}', "append: 'content' is missing"),
        (
            '{"op": "history", "conversation": "c", "limit": -1}',
            "history: 'limit' must be a non-negative integer",
        ),
        (
            '{"op": "history", "conversation": "c", "limit": true}',
            "history: 'limit' must be a non-negative integer",
        ),
    ],
)
async def test_bad_requests_get_an_error_reply(
    manager: PluginManager, request_text: str, error: str
) -> None:
    reply = json.loads(await manager.execute("memory", request_text))
    assert reply == {"ok": False, "error": error}
    assert manager.state("memory") == PluginState.RUNNING


async def test_the_database_is_a_wal_file_on_disk(manager: PluginManager, db_path: Path) -> None:
    await ask(manager, op="set", key="k", value=1)
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM kv WHERE key = 'k'").fetchone()[0] == "1"
    db.close()


async def test_data_survives_a_restart(db_path: Path) -> None:
    config = PluginConfig({"path": str(db_path)})
    async with PluginManager() as first:
        first.register(MemoryPlugin(), config=config)
        await first.start_all()
        await ask(first, op="set", key="answer", value=42)
        await ask(first, op="append", conversation="c", role="user", content="hi")
    async with PluginManager() as second:
        second.register(MemoryPlugin(), config=config)
        await second.start_all()
        assert (await ask(second, op="get", key="answer"))["value"] == 42
        assert len((await ask(second, op="history", conversation="c"))["messages"]) == 1


async def test_state_carries_over_a_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No explicit path: the default is in the user's data folder, which may change.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "before"))
    monkeypatch.chdir(tmp_path)
    async with PluginManager() as old_host:
        old = MemoryPlugin()
        old_host.register(old)
        await old_host.start_all()
        await ask(old_host, op="set", key="k", value="v")
        await ask(old_host, op="get", key="k")
        saved = await old.save_state()
    # What crosses a reload is plain JSON data.
    saved = json.loads(json.dumps(saved))
    assert saved == {"path": str(default_path()), "reads": 1, "writes": 1}
    assert default_path().is_relative_to(tmp_path / "before")

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "after"))
    async with PluginManager() as new_host:
        plugin = MemoryPlugin()
        new_host.register(plugin)
        await new_host.load("memory")
        await new_host.init_plugin("memory")
        await plugin.restore_state(saved)  # after load and init, before start
        await new_host.start("memory")
        assert (await ask(new_host, op="get", key="k"))["value"] == "v"
        stats = (await new_host.stats())["memory"]
    assert stats == {"path": saved["path"], "reads": 2, "writes": 1}


async def test_refresh_reopens_the_database(manager: PluginManager) -> None:
    plugin = manager.get("memory")
    assert isinstance(plugin, MemoryPlugin)
    await ask(manager, op="set", key="k", value=1)
    before = plugin.store
    await plugin.refresh()
    assert plugin.store is not before
    assert (await ask(manager, op="get", key="k"))["value"] == 1


async def test_an_unusable_path_fails_init(tmp_path: Path) -> None:
    async with PluginManager() as manager:
        # A directory cannot be opened as a database file.
        manager.register(MemoryPlugin(), config=PluginConfig({"path": str(tmp_path)}))
        report = await manager.start_all()
        assert report.failed == ["memory"]
        error = report.outcomes["memory"].error
        assert error is not None
        assert f"cannot open {tmp_path}" in error


class Notebook(AgentPlugin):
    """A plugin that uses memory through the shared state, as other plugins would."""

    metadata = PluginMetadata("notebook", "Notebook", PluginType.TOOL, dependencies=("memory",))

    async def start(self) -> None:
        assert self.context is not None
        self.api: MemoryAPI = await self.context.get_state(API_KEY)
        await self.api.set("notebook.started", True)

    async def execute(self, input: str) -> str:
        await self.api.append("notes", "user", input)
        return json.dumps(await self.api.history("notes"))


async def test_other_plugins_use_the_published_api(db_path: Path) -> None:
    async with PluginManager() as manager:
        manager.register(Notebook())
        manager.register(MemoryPlugin(), config=PluginConfig({"path": str(db_path)}))
        report = await manager.start_all()
        assert report.ok, report.outcomes
        messages = json.loads(await manager.execute("notebook", "buy milk"))
        assert [m["content"] for m in messages] == ["buy milk"]
        assert (await ask(manager, op="get", key="notebook.started"))["value"] is True

        memory = manager.get("memory")
        assert isinstance(memory, MemoryPlugin)
        api = memory.ctx.shared_state.get(API_KEY)
        assert isinstance(api, MemoryAPI)
        assert await api.get("missing", default="dflt") == "dflt"
        assert await api.contains("notebook.started")
        await manager.stop_all()
        assert memory.ctx.shared_state.get(API_KEY) is None


async def test_stats_and_health(manager: PluginManager, db_path: Path) -> None:
    await ask(manager, op="set", key="k", value=1)
    await ask(manager, op="get", key="k")
    await ask(manager, op="keys")
    assert (await manager.stats())["memory"] == {"path": str(db_path), "reads": 2, "writes": 1}
    assert (await manager.health_check())["memory"] is True


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG data folder is Linux's")
async def test_the_default_database_is_in_the_data_folder_not_the_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    async with PluginManager() as manager:
        manager.register(MemoryPlugin())
        await manager.start_all()
        await ask(manager, op="set", key="k", value=1)
    assert (tmp_path / "data" / "mofa-kernel" / "memory.sqlite3").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # noqa: ASYNC240 - a test


async def test_a_configured_path_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    async with PluginManager() as manager:
        manager.register(MemoryPlugin(), config=PluginConfig({"path": "~/m.sqlite3"}))
        await manager.start_all()
        await ask(manager, op="set", key="k", value=1)
    assert (tmp_path / "m.sqlite3").is_file()


async def test_a_misspelt_setting_fails_the_load() -> None:
    async with PluginManager() as manager:
        manager.register(MemoryPlugin(), config=PluginConfig({"paht": "x.sqlite3"}))
        report = await manager.start_all()
    assert report.errors() == [
        "memory: load failed: plugins.memory.settings.paht: unknown key; did you mean 'path'?"
    ]
