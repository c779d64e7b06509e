"""``mofa-kernel dev`` in-process: a session fed commands, its lines read as they are printed.

The installed-script version, with real pip installs while it runs, is in
``tests/integration/test_dev_command.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite, fake_site
from _hotcode import WAIT, plugin_source
from mofa_kernel import HotReloadConfig, PluginManager, ReloadStrategy
from mofa_kernel._cli import build_parser
from mofa_kernel._cli._dev_session import DevSession, seconds_text, stdin_lines, strategy_text
from mofa_kernel._cli._output import Output

PACKAGE = "dev_cli_pkg"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.setenv("MOFA_PLUGINS", "devplug")
    yield from fake_site(tmp_path, monkeypatch)


class Lines(io.TextIOBase):
    """A text stream whose complete lines can be awaited one by one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self.queue.put_nowait(line)
        return len(text)

    async def next(self) -> str:
        try:
            return await asyncio.wait_for(self.queue.get(), WAIT)
        except asyncio.TimeoutError:
            pytest.fail(f"no line within {WAIT}s")

    async def until(self, tag: str, **fields: Any) -> dict[str, Any]:
        """Read JSON lines until one tagged ``tag`` with these field values; return its fields."""
        while True:
            data = json.loads(await self.next())
            ((found, values),) = data.items()
            if found == tag and all(values.get(k) == v for k, v in fields.items()):
                return values  # type: ignore[no-any-return]


class Commands:
    """Commands typed into the session, one at a time."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def send(self, line: str) -> None:
        self.queue.put_nowait(line + "\n")

    async def __aiter__(self) -> AsyncIterator[str]:
        while (line := await self.queue.get()) is not None:
            yield line


def install(site: FakeSite, version: str) -> Path:
    site.add(
        "dev-cli-dist",
        plugins={"devplug": f"{PACKAGE}:Plugin"},
        files={f"{PACKAGE}/__init__.py": plugin_source("devplug", version)},
    )
    return site.root / PACKAGE / "__init__.py"


def manager() -> PluginManager:
    return PluginManager(hot_reload=HotReloadConfig(strategy=ReloadStrategy.IMMEDIATE))


async def test_a_json_session(site: FakeSite) -> None:
    file = install(site, "v1")
    lines, commands = Lines(), Commands()
    session = DevSession(manager(), Output(stdout=lines, stderr=io.StringIO()), as_json=True)
    running = asyncio.ensure_future(session.run(commands.__aiter__()))
    assert await lines.until("Ready") == {"plugins": ["devplug"]}
    commands.send("devplug hello there")
    assert await lines.until("ExecuteResult") == {
        "plugin_id": "devplug",
        "output": "v1:hello there:1",
    }
    file.write_text(plugin_source("devplug", "v2"), encoding="utf-8")
    completed = await lines.until("ReloadCompleted", plugin_id="devplug")
    assert completed["success"] is True
    assert completed["path"] == str(file)
    commands.send("devplug again")
    assert (await lines.until("ExecuteResult"))["output"] == "v2:again:2"
    commands.send("reload devplug")
    assert await lines.until("ReloadResult") == {
        "plugin_id": "devplug",
        "outcome": "unchanged",
        "reloaded": False,
        "error": None,
    }
    commands.send("ghost boo")
    assert await lines.until("ExecuteError") == {
        "plugin_id": "ghost",
        "error": "no plugin 'ghost'",
    }
    commands.send("quit")
    assert await lines.until("PluginUnloaded") == {"plugin_id": "devplug"}
    assert await asyncio.wait_for(running, WAIT) == 0


async def test_a_failed_manual_reload_is_a_reload_result_with_the_error(site: FakeSite) -> None:
    file = install(site, "v1")
    lines, commands = Lines(), Commands()
    session = DevSession(manager(), Output(stdout=lines, stderr=io.StringIO()), as_json=True)
    session.manager.hot_reload = HotReloadConfig(strategy=ReloadStrategy.MANUAL)
    running = asyncio.ensure_future(session.run(commands.__aiter__()))
    await lines.until("Ready")
    file.write_text("def broken(:\n", encoding="utf-8")
    await lines.until("Custom", plugin_id="devplug", event_type="mofa.reload.stale")
    commands.send("reload devplug")
    result = await lines.until("ReloadResult")
    assert result["reloaded"] is False
    assert result["error"].startswith("reload of 'devplug' failed: syntax check: SyntaxError:")
    assert result["error"].endswith(f"({PACKAGE}/__init__.py:1)")
    commands.queue.put_nowait(None)  # the end of stdin ends the session too
    assert await asyncio.wait_for(running, WAIT) == 0


async def test_text_lines(site: FakeSite) -> None:
    install(site, "v1")
    lines, commands = Lines(), Commands()
    session = DevSession(manager(), Output(stdout=lines, stderr=io.StringIO()), as_json=False)
    running = asyncio.ensure_future(session.run(commands.__aiter__()))
    first = await lines.next()
    assert first == "StateChanged plugin_id=devplug old_state=Unloaded new_state=Loading"
    while not (line := await lines.next()).startswith("Ready"):
        pass
    assert line == (
        "Ready: 1 plugin(s) (devplug), reload strategy immediate; type 'help' for the commands"
    )
    commands.send("devplug a b")
    assert await lines.next() == 'ExecuteResult plugin_id=devplug output="v1:a b:1"'
    commands.send("list")
    assert await lines.next() == "devplug: Running"
    commands.send("status")
    assert await lines.next() == (
        "Hot reload: strategy=immediate, preserve_state=true, auto_rollback=true, "
        "max_reload_attempts=3, reload_cooldown=5s"
    )
    assert await lines.next() == "devplug: Running"
    commands.send("help")
    assert (await lines.next()).startswith("ID INPUT ")
    while "mofa.toml" not in (line := await lines.next()):
        assert not line.startswith(("Error", "Execute"))
    commands.send("reload devplug")
    while not (line := await lines.next()).startswith("ReloadResult"):
        if line.startswith("ReloadCompleted"):
            assert re.fullmatch(r".* success=true duration=(<1|\d+)ms", line), line
    assert line == "ReloadResult plugin_id=devplug outcome=unchanged reloaded=false error=null"
    commands.send("quit")
    assert await asyncio.wait_for(running, WAIT) == 0


async def test_stdin_lines_are_read_without_blocking_the_loop() -> None:
    stream = io.StringIO("first\nsecond\n")
    assert [line async for line in stdin_lines(stream)] == ["first\n", "second\n"]


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(["dev", "--json"])
    assert args.json is True
    assert args.command == "dev"


def test_durations_and_strategies_read_like_words() -> None:
    assert seconds_text(0.0123) == "12ms"
    assert seconds_text(0.0002) == "<1ms"
    assert seconds_text(1.5) == "1.5s"
    assert strategy_text(ReloadStrategy.debounced(1.0)) == "debounced(1s)"
    assert strategy_text(ReloadStrategy.debounced(0.25)) == "debounced(250ms)"
    assert strategy_text(ReloadStrategy.ON_IDLE) == "on_idle"
    assert strategy_text(ReloadStrategy.MANUAL) == "manual"
