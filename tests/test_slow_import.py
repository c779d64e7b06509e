"""A slow plugin import is reported while it runs (_slow_import.py, called by discovery)."""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel import PluginManager
from mofa_kernel._slow_import import (
    DEFAULT_THRESHOLD,
    ENV_SLOW_IMPORT,
    ImportWatch,
    slow_import_threshold,
)

SLOW = """\
import mkt_slow_gate

mkt_slow_gate.entered.set()
mkt_slow_gate.release.wait()

from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("slow", "Slow", PluginType.TOOL)


@hookimpl
def execute(input):
    return "slow:" + input
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """What the slow plugin's import waits on: ``release``; it sets ``entered`` first."""
    module = types.ModuleType("mkt_slow_gate")
    module.entered = threading.Event()  # type: ignore[attr-defined]
    module.release = threading.Event()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mkt_slow_gate", module)
    return types.SimpleNamespace(entered=module.entered, release=module.release)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, DEFAULT_THRESHOLD), ("", DEFAULT_THRESHOLD), ("0.5", 0.5), ("10", 10.0),
     ("0", None), ("off", None), ("soon", DEFAULT_THRESHOLD), ("-1", DEFAULT_THRESHOLD),
     ("nan", DEFAULT_THRESHOLD)],
)  # fmt: skip
def test_the_threshold_comes_from_the_environment(value: str | None, expected: float) -> None:
    environ = {} if value is None else {ENV_SLOW_IMPORT: value}
    assert slow_import_threshold(environ) == expected


def test_a_quick_block_says_nothing() -> None:
    said: list[str] = []
    with ImportWatch("plugin 'quick'", threshold=60, report=said.append):
        pass
    assert said == []


def test_discover_warns_while_the_import_is_still_running(
    site: FakeSite,
    gate: types.SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(ENV_SLOW_IMPORT, "0.05")
    site.add("mkt-slow", "1.0", plugins={"slow": "mkt_slow"}, files={"mkt_slow.py": SLOW})
    warned = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "still importing" in record.getMessage():
                warned.set()

    seen = Seen()
    logging.getLogger("mofa_kernel").addHandler(seen)
    manager = PluginManager()
    worker = threading.Thread(target=manager.discover)
    try:
        worker.start()
        assert gate.entered.wait(60)
        assert warned.wait(60)  # reported while the import is blocked
        assert worker.is_alive()
    finally:
        gate.release.set()
        worker.join(60)
        logging.getLogger("mofa_kernel").removeHandler(seen)
    assert manager.plugin_ids() == ["slow"]
    messages = [r.getMessage() for r in caplog.records if "mkt-slow" in r.getMessage()]
    assert messages[0] == (
        "plugin 'slow' from mkt-slow 1.0 (mkt_slow): still importing after 0.05 s "
        "(discovery waits for it)"
    )
    assert messages[1].startswith("plugin 'slow' from mkt-slow 1.0 (mkt_slow): imported after ")
    assert len(messages) == 2


def test_a_failing_import_still_names_the_plugins_own_line(site: FakeSite) -> None:
    site.add("mkt-bad", "1.0", plugins={"bad": "mkt_bad"}, files={"mkt_bad.py": "\n\n1 / 0\n"})
    report = PluginManager().discover()
    (record,) = [r for r in report.records if r.plugin_id == "bad"]
    assert record.error is not None
    assert record.error.endswith("ZeroDivisionError: division by zero (mkt_bad.py:3)")
