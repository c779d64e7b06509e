"""The session's collector, the writer of docs/reliability.md, and the shared fixtures.

Every test of this package reports into one :class:`~._report.Collector`.
With ``MOFA_WRITE_RELIABILITY=1`` the end of the session rewrites the
generated regions of docs/reliability.md, provided every matrix cell ran and
every figure was counted; an ordinary run leaves tracked files alone.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite
from _fakesite import fake_site as make_fake_site

from ._matrix import cancellation_is_a_fault
from ._report import DOC, WRITE_ENV, Collector, write_document

COLLECTOR = pytest.StashKey[Collector]()

#: Environment variables that steer discovery; every test here starts without them.
DISCOVERY_VARIABLES = ("MOFA_PLUGINS", "MOFA_DISABLE_PLUGIN_AUTOLOAD", "MOFA_CONFIG")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[COLLECTOR] = Collector()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    collector = item.config.stash.get(COLLECTOR, None)
    if collector is not None:  # only this package's items reach this conftest's hook
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        cell = params.get("cell")
        if "key" in params and "isolation" in params:  # test_process_faults.py's cells
            cell = f"{params['key']}-{params['isolation']}"
        collector.record_report(item.nodeid, cell, report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(WRITE_ENV) != "1":
        return
    collector = session.config.stash.get(COLLECTOR, None)
    if collector is None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    problems = collector.incomplete()
    if not cancellation_is_a_fault():
        problems.append("the document records Python 3.11+ behaviour; run it there")
    if problems:
        if reporter is not None:
            reporter.write_line(f"{WRITE_ENV}=1: {DOC.name} left unchanged because:")
            for problem in problems:
                reporter.write_line(f"  {problem}")
        return
    write_document(collector, cancellation_is_fault=cancellation_is_a_fault())
    if reporter is not None:
        reporter.write_line(f"{WRITE_ENV}=1: rewrote the generated regions of {DOC}")


@pytest.fixture(scope="session")
def tally(pytestconfig: pytest.Config) -> Collector:
    """Where tests add the figures docs/reliability.md reports."""
    return pytestconfig.stash[COLLECTOR]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No discovery variables, and a working directory of the test's own (no mofa.toml)."""
    for name in DISCOVERY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def fake_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_environment: None
) -> Iterator[FakeSite]:
    """Distributions written on disk and put on ``sys.path``, forgotten after the test."""
    yield from make_fake_site(tmp_path, monkeypatch)
