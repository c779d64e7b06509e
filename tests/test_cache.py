"""The discovery and metadata cache: never stale, never torn, switched off and cleared on demand.

Distributions are real dist-info folders written into a folder that is the
only non-stdlib entry of ``sys.path``, so that nothing else on the machine
can disturb the fingerprint. The cache stores a fingerprint only once
everything in it has been left alone for ``SETTLE_NS``; the module's
``settled`` fixture writes the sites that need that once and waits for them
together.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _fakesite import FakeSite
from mofa_kernel import PluginManager, _cache
from mofa_kernel._cli import main
from mofa_kernel._cli._listing import GROUP, replay
from mofa_kernel._cli._output import Output
from mofa_kernel._discovery import PLUGIN_GROUP, ScanResult, scan_with_problems

# What the commands import on first use, imported now: the tests narrow sys.path to a site
# of their own, without the third-party packages.
for _module in (
    "mofa_kernel._config",
    "mofa_kernel._wire",
    "mofa_kernel._manager",
    "packaging.requirements",
    "packaging.specifiers",
):
    importlib.import_module(_module)

#: The standard library's own entries of sys.path: they hold no distributions and never change.
STDLIB = [
    entry
    for entry in sys.path
    if entry and entry.startswith(os.path.realpath(sys.base_prefix)) and "-packages" not in entry
]

PLUGIN = """\
from mofa_kernel import AgentPlugin, PluginMetadata, PluginType

class Plugin(AgentPlugin):
    metadata = PluginMetadata("{pid}", "{name}", PluginType.TOOL, description="{description}")

    async def execute(self, input):
        return input
"""


def _base(site: FakeSite) -> None:
    site.add("mkt-base", plugins={"base": "mkt_base:Plugin"})


def _listed(site: FakeSite) -> None:
    site.add("mkt-l1", plugins={"l1": "mkt_l1:Plugin"})
    site.add("mkt-l2", plugins={"l2": "mkt_l2:Plugin"})


#: Sites written once for the whole module and left to settle together. A test that changes
#: its site has one of its own: a changed site is unsettled again for a while.
SCENARIOS: dict[str, Callable[[FakeSite], object]] = {
    "stable": _base,
    "install-memo": _base,
    "install-file": _base,
    "uninstall": lambda s: (_base(s), s.add("mkt-gone", plugins={"gone": "mkt_gone:Plugin"})),
    "upgrade": lambda s: s.add("mkt-up", "1.0", plugins={"old": "mkt_up:Old"}),
    "reinstall": lambda s: s.add("mkt-re", "1.0", plugins={"first": "mkt_re:First"}),
    "edit": lambda s: s.add("mkt-ed", plugins={"one": "mkt_ed:One"}),
    "egg": lambda s: _egg_info(s.root, "mkt-egg", "[console_scripts]\nx = mkt_egg:main\n"),
    "listing": _listed,
    "listing-install": _listed,
    "metadata": lambda s: s.add(
        "mkt-meta",
        plugins={"meta": "mkt_meta:Plugin"},
        files={"mkt_meta.py": PLUGIN.format(pid="meta", name="Meta", description="first")},
    ),
    "fast-metadata": lambda s: s.add(
        "mkt-fast",
        plugins={"fast": "mkt_fast:Plugin"},
        files={"mkt_fast.py": PLUGIN.format(pid="fast", name="Fast", description="known")},
    ),
}


def _egg_info(root: Path, name: str, entry_points: str) -> Path:
    """An ``*.egg-info`` folder as setuptools writes it for a development install."""
    folder = root / f"{name.replace('-', '_')}.egg-info"
    folder.mkdir()
    (folder / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (folder / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return folder


def _newest_change(root: Path) -> int:
    stats = [root.stat(), *(p.stat() for p in root.rglob("*"))]
    return max(max(s.st_mtime_ns, s.st_ctime_ns) for s in stats)


def wait_until_settled(*roots: Path) -> None:
    """Wait out the cache's settling window for everything under ``roots``.

    Time passing is the event: a fingerprint is trusted only once its files
    have been left alone for ``SETTLE_NS``, and no file date can be set back
    (the inode change time cannot be).
    """
    newest = max(_newest_change(root) for root in roots)
    remaining = newest + _cache.SETTLE_NS - time.time_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9 + 0.05)


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FakeSite]:
    """One site per scenario, written at once and settled together."""
    base = tmp_path_factory.mktemp("settled")
    patch = pytest.MonkeyPatch()
    try:
        sites = {name: FakeSite(base / name, patch) for name in SCENARIOS}
    finally:
        patch.undo()  # each test puts its own site on sys.path
    for name, build in SCENARIOS.items():
        build(sites[name])
    wait_until_settled(base)
    return sites


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache of the test's own, switched on, and nothing remembered from other tests."""
    home = tmp_path / "cache"
    monkeypatch.setenv("MOFA_CACHE_DIR", str(home))
    monkeypatch.delenv("MOFA_NO_CACHE", raising=False)
    for name in ("MOFA_CONFIG", "MOFA_PLUGINS", "MOFA_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Written bytecode would change the sites under test; pip writes it at install time.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _cache.forget_scans()
    yield home
    _cache.forget_scans()


def use(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """Make ``site`` the only place distributions are found."""
    monkeypatch.setattr(sys, "path", [str(site.root), *STDLIB])
    return site


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A site written during the test: too fresh for its fingerprint to be stored."""
    site = FakeSite(tmp_path / "fresh", monkeypatch)
    use(site, monkeypatch)
    yield site
    site.forget_modules()


def plugins(result: ScanResult) -> dict[str, str]:
    return {s.plugin_id: s.entry_point for s in result.sources}


def stored_scans(home: Path) -> list[Path]:
    return sorted(home.glob("scan-*.json")) if home.exists() else []


def scan_twice(forget: bool) -> tuple[ScanResult, ScanResult]:
    """Two scans, the second from the in-process memo or (``forget``) from the file."""
    first = scan_with_problems()
    if forget:
        _cache.forget_scans()
    return first, scan_with_problems()


def reinstall(site: FakeSite, name: str, version: str, plugins: dict[str, str]) -> None:
    """What pip does: the old dist-info folder goes, a new one is written."""
    for old in site.root.glob(f"{name.replace('-', '_')}-*.dist-info"):
        shutil.rmtree(old)
    site.add(name, version, plugins=plugins)


# -- reuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("forget", [False, True], ids=["memo", "file"])
def test_a_settled_installation_is_scanned_once(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch, cache_home: Path, forget: bool
) -> None:
    use(settled["stable"], monkeypatch)
    first, second = scan_twice(forget)
    assert plugins(first) == plugins(second) == {"base": "mkt_base:Plugin"}
    assert first.fingerprint is not None
    assert second.fingerprint == first.fingerprint
    assert len(stored_scans(cache_home)) == 1
    probe = _cache.probe(PLUGIN_GROUP)
    assert probe is not None
    assert probe.load(lambda data: data) is not None


def test_a_fresh_installation_is_not_stored(fresh: FakeSite, cache_home: Path) -> None:
    fresh.add("mkt-new", plugins={"new": "mkt_new:Plugin"})
    result = scan_with_problems()
    assert plugins(result) == {"new": "mkt_new:Plugin"}
    assert result.fingerprint is None
    assert stored_scans(cache_home) == []


# -- never stale -----------------------------------------------------------------------------


@pytest.mark.parametrize("forget", [False, True], ids=["memo", "file"])
def test_install_is_seen(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch, forget: bool
) -> None:
    site = use(settled["install-file" if forget else "install-memo"], monkeypatch)
    assert scan_with_problems().fingerprint is not None
    site.add("mkt-added", plugins={"added": "mkt_added:Plugin"})
    if forget:
        _cache.forget_scans()
    assert plugins(scan_with_problems()) == {"base": "mkt_base:Plugin", "added": "mkt_added:Plugin"}


def test_uninstall_is_seen(settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch) -> None:
    site = use(settled["uninstall"], monkeypatch)
    assert set(plugins(scan_with_problems())) == {"base", "gone"}
    shutil.rmtree(site.root / "mkt_gone-1.0.dist-info")
    assert set(plugins(scan_with_problems())) == {"base"}


def test_upgrade_is_seen(settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch) -> None:
    site = use(settled["upgrade"], monkeypatch)
    assert scan_with_problems().fingerprint is not None
    reinstall(site, "mkt-up", "2.0", {"new": "mkt_up:New"})
    (source,) = scan_with_problems().sources
    assert (source.plugin_id, source.distribution_version) == ("new", "2.0")


def test_reinstall_in_the_same_second_with_changed_entry_points_is_seen(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = use(settled["reinstall"], monkeypatch)
    assert plugins(scan_with_problems()) == {"first": "mkt_re:First"}
    started = time.time()
    reinstall(site, "mkt-re", "1.0", {"second": "mkt_re:Second"})
    assert plugins(scan_with_problems()) == {"second": "mkt_re:Second"}
    reinstall(site, "mkt-re", "1.0", {"third": "mkt_re:Third"})
    assert plugins(scan_with_problems()) == {"third": "mkt_re:Third"}
    assert time.time() - started < 1, "the reinstalls were meant to share one second"


def test_installs_and_scans_within_one_clock_tick_are_never_stale(
    fresh: FakeSite, cache_home: Path
) -> None:
    for round_ in range(5):
        reinstall(fresh, "mkt-tick", "1.0", {f"p{round_}": f"mkt_tick:P{round_}"})
        assert plugins(scan_with_problems()) == {f"p{round_}": f"mkt_tick:P{round_}"}
    assert stored_scans(cache_home) == []


def test_entry_points_edited_in_place_are_seen(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = use(settled["edit"], monkeypatch)
    assert plugins(scan_with_problems()) == {"one": "mkt_ed:One"}
    entry_points = site.root / "mkt_ed-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[mofa.plugins]\ntwo = mkt_ed:Two\n", encoding="utf-8")
    assert plugins(scan_with_problems()) == {"two": "mkt_ed:Two"}


def test_an_egg_info_changed_in_place_is_seen(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = use(settled["egg"], monkeypatch)
    assert plugins(scan_with_problems()) == {}
    assert scan_with_problems().fingerprint is not None
    entry_points = site.root / "mkt_egg.egg-info" / "entry_points.txt"
    entry_points.write_text("[mofa.plugins]\negg = mkt_egg:Plugin\n", encoding="utf-8")
    assert plugins(scan_with_problems()) == {"egg": "mkt_egg:Plugin"}


def test_a_distribution_finder_outside_sys_path_disables_the_cache(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch, cache_home: Path
) -> None:
    class ElsewhereFinder:
        """A finder whose distributions the fingerprint cannot see."""

        @staticmethod
        def find_distributions(context: object = None) -> list[object]:
            return []

    use(settled["stable"], monkeypatch)
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, ElsewhereFinder()])
    assert _cache.probe(PLUGIN_GROUP) is None
    assert scan_with_problems().fingerprint is None
    assert stored_scans(cache_home) == []


# -- damaged files, schema, switches ---------------------------------------------------------


def test_a_corrupt_file_is_ignored_and_rewritten(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch, cache_home: Path
) -> None:
    use(settled["stable"], monkeypatch)
    scan_with_problems()
    (stored,) = stored_scans(cache_home)
    text = stored.read_text(encoding="utf-8")
    for damage in (text[: len(text) // 2], "\x00" * 64, "[]", text.replace('"base"', "42")):
        stored.write_text(damage, encoding="utf-8")
        _cache.forget_scans()
        assert plugins(scan_with_problems()) == {"base": "mkt_base:Plugin"}
        assert json.loads(stored.read_text(encoding="utf-8"))["scan"]["sources"][0][0] == "base"


def test_a_file_of_another_schema_is_ignored(
    settled: dict[str, FakeSite], monkeypatch: pytest.MonkeyPatch, cache_home: Path
) -> None:
    use(settled["stable"], monkeypatch)
    scan_with_problems()
    (stored,) = stored_scans(cache_home)
    data = json.loads(stored.read_text(encoding="utf-8"))
    data["schema"] = _cache.SCHEMA + 1
    data["scan"]["sources"] = [["ghost", "ghost:P", "ghost", "1", None, None, None]]
    stored.write_text(json.dumps(data), encoding="utf-8")
    _cache.forget_scans()
    assert plugins(scan_with_problems()) == {"base": "mkt_base:Plugin"}
    assert json.loads(stored.read_text(encoding="utf-8"))["schema"] == _cache.SCHEMA


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_the_environment_variable_switches_the_cache_off(
    settled: dict[str, FakeSite],
    monkeypatch: pytest.MonkeyPatch,
    cache_home: Path,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    use(settled["stable"], monkeypatch)
    monkeypatch.setenv("MOFA_NO_CACHE", value)
    assert _cache.probe(PLUGIN_GROUP) is None
    assert plugins(scan_with_problems()) == {"base": "mkt_base:Plugin"}
    assert main(["plugins", "list", "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == ["base"]
    assert not cache_home.exists()


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_false_words_leave_the_cache_on(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MOFA_NO_CACHE", value)
    assert _cache.enabled()


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _cache.cache_dir() == str(tmp_path / "cache")
    monkeypatch.delenv("MOFA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform not in ("win32", "darwin"):
        assert _cache.cache_dir() == str(tmp_path / "xdg" / "mofa-kernel")


# -- several processes -----------------------------------------------------------------------

WRITER = """\
import sys
from mofa_kernel import _cache

path, me, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = {"schema": _cache.SCHEMA, "identity": _cache._store.identity(), "writer": me,
           "body": [me * 40] * 2000}
for _ in range(rounds):
    assert _cache._store.write_json(path, payload)
"""


def test_concurrent_writers_never_leave_a_torn_file(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "scan-test.json"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), f"w{n}", "60"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    reads = 0
    try:
        while any(w.poll() is None for w in writers) or reads == 0:
            try:
                text = target.read_bytes()
            except FileNotFoundError:
                continue  # no writer has finished a first file yet
            data = json.loads(text)  # a torn file would not parse
            reads += 1
            assert data["body"] == [data["writer"] * 40] * 2000
            assert _cache._store.read_json(str(target)) is not None
    finally:
        for writer in writers:
            _, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err
    assert reads > 0
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# -- plugins list: replayed listings and cached metadata ------------------------------------


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def replayed(*argv: str) -> bool:
    """Whether ``argv`` is answered from a stored listing (its output thrown away)."""
    out = Output(open(os.devnull, "w"), open(os.devnull, "w"))  # noqa: SIM115 - closed below
    try:
        return replay(list(argv), out) is not None
    finally:
        out.stdout.close()
        out.stderr.close()


def test_list_is_replayed_for_the_same_inputs_only(
    settled: dict[str, FakeSite],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(settled["listing"], monkeypatch)
    assert not replayed("plugins", "list", "--json")
    rows = run_json(capsys, "plugins", "list", "--json")
    assert [r["id"] for r in rows] == ["l1", "l2"]
    assert replayed("plugins", "list", "--json")
    assert replayed("plugins", "list")
    assert run_json(capsys, "plugins", "list", "--json") == rows

    monkeypatch.setenv("MOFA_PLUGINS", "l2")
    assert not replayed("plugins", "list", "--json")
    rows = run_json(capsys, "plugins", "list", "--json")
    assert [(r["id"], r["status"]) for r in rows] == [("l1", "disabled"), ("l2", "discovered")]
    monkeypatch.delenv("MOFA_PLUGINS")

    config = tmp_path / "mofa.toml"
    config.write_text("[plugins.l1]\nenabled = false\n", encoding="utf-8")
    assert not replayed("plugins", "list", "--json")
    assert [r["enabled"] for r in run_json(capsys, "plugins", "list", "--json")] == [False, True]
    assert replayed("plugins", "list", "--json")
    config.write_text("[plugins.l2]\nenabled = false\n", encoding="utf-8")
    assert not replayed("plugins", "list", "--json")
    assert [r["enabled"] for r in run_json(capsys, "plugins", "list", "--json")] == [True, False]
    assert not replayed("plugins", "list", "--json", "--bogus")
    assert not replayed("plugins", "info", "l1")


def test_list_is_not_replayed_after_an_install(
    settled: dict[str, FakeSite],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = use(settled["listing-install"], monkeypatch)
    run_json(capsys, "plugins", "list", "--json")
    assert replayed("plugins", "list", "--json")
    site.add("mkt-l3", plugins={"l3": "mkt_l3:Plugin"})
    assert not replayed("plugins", "list", "--json")
    assert [r["id"] for r in run_json(capsys, "plugins", "list", "--json")] == ["l1", "l2", "l3"]


def metadata_of(capsys: pytest.CaptureFixture[str], pid: str) -> object:
    rows = run_json(capsys, "plugins", "list", "--json")
    (row,) = [r for r in rows if r["id"] == pid]
    return row["metadata"]


def test_metadata_is_listed_once_loaded_until_the_distribution_changes(
    settled: dict[str, FakeSite],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = use(settled["metadata"], monkeypatch)
    try:
        assert metadata_of(capsys, "meta") is None
        PluginManager().discover()
        assert "mkt_meta" in sys.modules
        listed = metadata_of(capsys, "meta")
        assert isinstance(listed, dict)
        assert (listed["id"], listed["name"], listed["description"]) == ("meta", "Meta", "first")
        assert replayed("plugins", "list", "--json")
        assert metadata_of(capsys, "meta") == listed

        site.forget_modules()
        shutil.rmtree(site.root / "mkt_meta-1.0.dist-info")
        site.add(
            "mkt-meta",
            plugins={"meta": "mkt_meta:Plugin"},
            files={"mkt_meta.py": PLUGIN.format(pid="meta", name="Meta", description="second")},
        )
        assert metadata_of(capsys, "meta") is None
        PluginManager().discover()
        listed = metadata_of(capsys, "meta")
        assert isinstance(listed, dict)
        assert listed["description"] == "second"
    finally:
        site.forget_modules()


def test_a_plugin_imported_before_discovery_is_not_recorded(
    fresh: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh.add(
        "mkt-early",
        plugins={"early": "mkt_early:Plugin"},
        files={"mkt_early.py": PLUGIN.format(pid="early", name="Early", description="x")},
    )
    __import__("mkt_early")
    PluginManager().discover()
    assert metadata_of(capsys, "early") is None


def test_info_records_metadata_too(fresh: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    fresh.add(
        "mkt-info",
        plugins={"informed": "mkt_info:Plugin"},
        files={"mkt_info.py": PLUGIN.format(pid="informed", name="Informed", description="y")},
    )
    assert run_json(capsys, "plugins", "info", "informed", "--json")["metadata"]["name"] == (
        "Informed"
    )
    listed = metadata_of(capsys, "informed")
    assert isinstance(listed, dict)
    assert listed["description"] == "y"


def test_metadata_files_of_gone_environments_are_pruned(
    fresh: FakeSite, cache_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_home.mkdir()
    for n in range(40):
        old = cache_home / f"metadata-gone{n:02d}.json"
        old.write_text("{}", encoding="utf-8")
        os.utime(old, ns=(n * 10**9, n * 10**9))
    fresh.add(
        "mkt-prune",
        plugins={"prune": "mkt_prune:Plugin"},
        files={"mkt_prune.py": PLUGIN.format(pid="prune", name="Prune", description="p")},
    )
    PluginManager().discover()
    left = sorted(p.name for p in cache_home.glob("metadata-*.json"))
    assert len(left) == 32
    assert "metadata-gone00.json" not in left
    assert metadata_of(capsys, "prune") is not None


def test_an_editable_plugin_is_keyed_on_its_package_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    package = project / "src" / "mkt_editable"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .plugin import Plugin\n", encoding="utf-8")
    (package / "plugin.py").write_text("Plugin = None\n", encoding="utf-8")
    site = FakeSite(tmp_path / "site", monkeypatch)
    dist_info = site.add(
        "mkt-editable", plugins={"ed": "mkt_editable:Plugin"}, editable_project=project
    )
    token = _cache.plugin_token(
        entry_point="mkt_editable:Plugin", path=str(project), metadata_dir=str(dist_info)
    )
    assert token is not None
    assert token[1] is False, "files written just now are too fresh to be trusted"
    (package / "plugin.py").write_text("Plugin = 'changed'\n", encoding="utf-8")
    again = _cache.plugin_token(
        entry_point="mkt_editable:Plugin", path=str(project), metadata_dir=str(dist_info)
    )
    assert again is not None
    assert again[0] != token[0]
    assert _cache.plugin_token(entry_point="x:P", path=str(project), metadata_dir=None) is None


# -- the cache command -----------------------------------------------------------------------


def test_cache_info_and_clear(
    settled: dict[str, FakeSite],
    monkeypatch: pytest.MonkeyPatch,
    cache_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(settled["listing"], monkeypatch)
    run_json(capsys, "plugins", "list", "--json")
    info = run_json(capsys, "cache", "info", "--json")
    assert info["directory"] == str(cache_home)
    assert info["enabled"] is True
    assert info["schema"] == _cache.SCHEMA
    assert [f["name"] for f in info["files"]] == [p.name for p in stored_scans(cache_home)]
    assert info["size"] == sum(p.stat().st_size for p in stored_scans(cache_home))

    assert main(["cache", "info"]) == 0
    assert f"directory: {cache_home}" in capsys.readouterr().out

    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 file from {cache_home}"
    assert stored_scans(cache_home) == []
    assert not replayed("plugins", "list", "--json")
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 0 files")


def test_the_fast_path_lists_the_same_group_as_discovery() -> None:
    assert GROUP == PLUGIN_GROUP


FAST = """\
import importlib
import sys

from mofa_kernel._cli import main

mode, sys.argv[1:] = sys.argv[1], sys.argv[2:]
if mode == "prepare":  # what the slow path needs, before sys.path loses site-packages
    for name in (
        "mofa_kernel._config",
        "mofa_kernel._discovery",
        "mofa_kernel._wire",
        "packaging.requirements",
    ):
        importlib.import_module(name)
sys.path[:] = sys.argv[1:]
before = set(sys.modules)
assert main(["plugins", "list", "--json"]) == 0
heavy = {"attrs", "cattrs", "argparse", "asyncio", "importlib.metadata", "typing"}
heavy |= {"mofa_kernel._discovery", "mofa_kernel._source"}
print(sorted(heavy & (set(sys.modules) - before)), file=sys.stderr)
"""


@pytest.mark.parametrize("scenario", ["listing", "fast-metadata"])
def test_a_replayed_listing_imports_nothing_heavy(
    settled: dict[str, FakeSite], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    """Also when the plugins' metadata is known, whose tokens the replay checks."""
    site = settled[scenario]
    if scenario == "fast-metadata":  # learn the plugin's metadata, as loading it does
        use(site, monkeypatch)
        try:
            PluginManager().discover()
        finally:
            site.forget_modules()

    def run(mode: str) -> tuple[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", FAST, mode, str(site.root), *STDLIB],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ, MOFA_CACHE_DIR=str(tmp_path / "cache")),
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout, result.stderr.strip().splitlines()[-1]

    first_out, _ = run("prepare")
    assert list((tmp_path / "cache").rglob("scan-*"))  # the first run scanned and stored
    second_out, second_imported = run("replay")
    assert second_imported == "[]"
    assert json.loads(second_out) == json.loads(first_out)
    if scenario == "fast-metadata":
        (row,) = json.loads(second_out)
        assert row["metadata"]["description"] == "known"
