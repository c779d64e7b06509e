"""``mofa-kernel dora-node`` in-process, up to the moment it would join a dataflow.

What happens before ``dora.Node()`` is made (ids checked, plugins started)
runs here over fake installed distributions; serving in a real dataflow is in
tests/integration/test_dora_dataflow.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel._cli import main


def _has_dora() -> bool:
    try:
        return importlib.util.find_spec("dora.testing") is not None
    except ModuleNotFoundError:
        return False


#: For the tests that get as far as starting plugins: without dora-rs (Python 3.10) the
#: command stops before, saying what to install.
needs_dora = pytest.mark.skipif(
    not _has_dora(), reason="dora-rs 1.x (Python 3.11 and newer) is not installed"
)

GOOD = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Good(AgentPlugin):
    metadata = PluginMetadata("good", "Good", PluginType.TOOL)

    async def execute(self, input):
        return input
"""

SULKY = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Sulky(AgentPlugin):
    metadata = PluginMetadata("sulky", "Sulky", PluginType.TOOL, dependencies=("good",))

    async def start(self):
        raise RuntimeError("will not start today")

    async def execute(self, input):
        return input
"""

NEEDY = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Needy(AgentPlugin):
    metadata = PluginMetadata("needy", "Needy", PluginType.TOOL, dependencies=("ghost",))

    async def execute(self, input):
        return input
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv("MOFA_CONFIG", raising=False)
    monkeypatch.delenv("MOFA_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("MOFA_PLUGINS", "good,sulky,needy,gone")
    monkeypatch.chdir(tmp_path)
    for fake in fake_site(tmp_path, monkeypatch):
        fake.add("mkd-good", plugins={"good": "mkd_good:Good"}, files={"mkd_good.py": GOOD})
        fake.add("mkd-sulky", plugins={"sulky": "mkd_sulky:Sulky"}, files={"mkd_sulky.py": SULKY})
        fake.add("mkd-needy", plugins={"needy": "mkd_needy:Needy"}, files={"mkd_needy.py": NEEDY})
        fake.add("mkd-gone", plugins={"gone": "mkd_gone:Gone"}, files={"mkd_gone.py": NEEDY})
        yield fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("site")
def test_an_unknown_plugin_exits_2_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "dora-node", "--plugin", "good", "--plugin", "nobody")
    assert (code, out) == (2, "")
    assert err == (
        "mofa-kernel: unknown plugin id 'nobody'; did you mean 'good'? "
        "(known: gone, good, needy, sulky)\n"
    )


@pytest.mark.usefixtures("site")
def test_a_disabled_plugin_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOFA_PLUGINS", "good")
    code, _, err = run(capsys, "dora-node", "--plugin", "sulky")
    assert code == 2
    assert err.startswith("mofa-kernel: plugin 'sulky' is not enabled: ")


@needs_dora
@pytest.mark.usefixtures("site")
def test_a_plugin_that_fails_to_start_exits_1_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "dora-node", "--plugin", "sulky")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("mofa-kernel: sulky: ")
    assert "will not start today" in err


@needs_dora
@pytest.mark.usefixtures("site")
def test_a_missing_dependency_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "dora-node", "--plugin", "needy")
    assert code == 1
    assert err == (
        "mofa-kernel: needy: missing dependency: needy -> ghost (not installed or not enabled)\n"
    )


@needs_dora
@pytest.mark.usefixtures("site")
def test_outside_a_dataflow_it_exits_1_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("DORA_")]:
        monkeypatch.delenv(name)
    code, out, err = run(capsys, "dora-node", "--plugin", "good")
    assert (code, out) == (1, "")
    assert err.startswith("mofa-kernel: cannot join a dora dataflow: ")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("site")
def test_without_dora_rs_it_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dora" else real(name, *a)
    )
    code, _, err = run(capsys, "dora-node", "--plugin", "good")
    assert code == 2
    assert err == (
        "mofa-kernel: dora-node needs dora-rs: pip install 'mofa-kernel[dora]' "
        "(Python 3.11 and newer)\n"
    )


@pytest.mark.usefixtures("site")
@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["dora-node"], "the following arguments are required: --plugin"),
        (["dora-node", "--plugin", "good", "--concurrency", "0"], "expected 1 or more, got 0"),
        (["dora-node", "--plugin", "good", "--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert complaint in err


@needs_dora
@pytest.mark.skipif(sys.platform != "linux", reason="workers need pidfds; reads /proc")
@pytest.mark.usefixtures("site")
def test_an_isolated_plugins_node_leaves_no_worker_behind_not_even_the_spare(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from _isolated import running
    from mofa_kernel._isolation import _spawn

    for name in [name for name in os.environ if name.startswith("DORA_")]:
        monkeypatch.delenv(name)
    (tmp_path / "mofa.toml").write_text('[plugins.good]\nisolation = "process"\n', "utf-8")
    started: list[int] = []

    def launch(spec: _spawn.WorkerSpec) -> _spawn.Launched:
        launched = real_launch(spec)
        started.append(launched.pid)
        return launched

    real_launch = _spawn.launch
    monkeypatch.setattr(_spawn, "launch", launch)
    # The plugin starts in a worker, then the node cannot join (no dataflow) and exits.
    code, _, err = run(capsys, "dora-node", "--plugin", "good")
    assert err.startswith("mofa-kernel: cannot join a dora dataflow: ")
    assert code == 1
    assert started  # a spare, at least, started beside the plugin's worker
    assert [pid for pid in started if running(pid)] == []
