"""The trust lock (_trust.py): approving distributions by their RECORD and noticing changes."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import attrs
import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel import PluginConfigError, PluginManager
from mofa_kernel._discovery import load_plugin_object, survey
from mofa_kernel._trust import (
    LOCK_FILE_NAME,
    Approval,
    TrustLock,
    Verdict,
    approve_all,
    exclusion_rule,
    find_distribution,
    record_problems,
)

PLUGIN = """\
import os
import pathlib

if os.environ.get("MOFA_TEST_MARKERS"):
    pathlib.Path(os.environ["MOFA_TEST_MARKERS"], "{pid}").write_text("imported")

from mofa_kernel import PluginMetadata, PluginType, hookimpl


@hookimpl
def plugin_metadata():
    return PluginMetadata("{pid}", "{pid}", PluginType.TOOL)


@hookimpl
def execute(input):
    return input
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


def _hash(data: bytes, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm}=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def install(
    site: FakeSite, name: str, version: str = "1.0", *, pid: str | None = None, extra: str = ""
) -> Path:
    """A distribution with one plugin package and a RECORD that hashes every file, as pip
    writes it; returns its dist-info folder."""
    pid = pid or name.split("-")[-1]
    package = name.replace("-", "_")
    dist_info = site.add(
        name,
        version,
        plugins={pid: package},
        files={
            f"{package}/__init__.py": PLUGIN.format(pid=pid),
            f"{package}/helpers.py": f"VALUE = 1{extra}\n",
        },
    )
    rehash(site, dist_info)
    return dist_info


def rehash(site: FakeSite, dist_info: Path, algorithm: str = "sha256") -> None:
    """Rewrite RECORD with the hash and size of every file it lists (RECORD itself excepted)."""
    rows = []
    for line in (dist_info / "RECORD").read_text().splitlines():
        path = line.split(",")[0]
        if path.endswith("/RECORD"):
            rows.append(f"{path},,")
            continue
        data = (site.root / path).read_bytes()
        rows.append(f"{path},{_hash(data, algorithm)},{len(data)}")
    (dist_info / "RECORD").write_text("\n".join(rows) + "\n")


def dist(name: str) -> importlib.metadata.Distribution:
    found = find_distribution(name)
    assert found is not None
    return found


def test_an_approved_distribution_verifies(site: FakeSite) -> None:
    install(site, "trust-alpha")
    lock = TrustLock().approve(dist("trust-alpha"))
    approval = lock.approvals["trust-alpha"]
    assert approval.distribution == "trust-alpha"
    assert approval.version == "1.0"
    assert approval.files == 4  # two modules, METADATA and entry_points.txt
    verdict = lock.verify(dist("trust-alpha"))
    assert verdict == Verdict("trust-alpha", "approved")
    assert verdict.approved
    assert verdict.describe() == "trust-alpha: approved"


def test_an_unknown_distribution_is_unapproved(site: FakeSite) -> None:
    install(site, "trust-alpha")
    install(site, "trust-beta")
    lock = TrustLock().approve(dist("trust-alpha"))
    verdict = lock.verify(dist("trust-beta"))
    assert verdict.status == "unapproved"
    assert verdict.describe() == "trust-beta: not approved"


def test_a_file_edited_in_place_is_noticed(site: FakeSite) -> None:
    install(site, "trust-alpha")
    lock = TrustLock().approve(dist("trust-alpha"))
    helpers = site.root / "trust_alpha" / "helpers.py"
    helpers.write_text("VALUE = 2  # changed after approval\n")
    verdict = lock.verify(dist("trust-alpha"))
    assert verdict.status == "changed"
    assert verdict.problems == ("trust_alpha/helpers.py: modified since it was installed",)
    assert "changed since approval (trust_alpha/helpers.py: modified" in verdict.describe()


def test_a_missing_file_and_an_added_module_are_noticed(site: FakeSite) -> None:
    install(site, "trust-alpha")
    lock = TrustLock().approve(dist("trust-alpha"))
    (site.root / "trust_alpha" / "helpers.py").unlink()
    (site.root / "trust_alpha" / "sneaky.py").write_text("import os\n")
    (site.root / "trust_alpha" / "notes.txt").write_text("data can change behaviour too\n")
    (site.root / "trust_alpha" / "__pycache__").mkdir()
    assert lock.verify(dist("trust-alpha")).problems == (
        "trust_alpha/helpers.py: missing",
        "trust_alpha/notes.txt: a file not in RECORD (added)",
        "trust_alpha/sneaky.py: a file not in RECORD (added)",
    )


def test_modules_of_other_distributions_beside_it_are_not_added_files(site: FakeSite) -> None:
    install(site, "trust-alpha")
    (site.root / "someone_else.py").write_text("X = 1\n")
    assert record_problems(dist("trust-alpha")) == []


def test_a_reinstall_of_another_version_is_noticed(site: FakeSite) -> None:
    old = install(site, "trust-alpha")
    lock = TrustLock().approve(dist("trust-alpha"))
    for path in old.iterdir():
        path.unlink()
    old.rmdir()
    install(site, "trust-alpha", "2.0", extra="  # new release")
    verdict = lock.verify(dist("trust-alpha"))
    assert verdict.status == "changed"
    assert verdict.problems == ("version 2.0, approved 1.0", "RECORD differs from the approved one")


def test_a_weak_hash_in_record_is_a_problem(site: FakeSite) -> None:
    dist_info = install(site, "trust-alpha")
    rehash(site, dist_info, "md5")
    problems = record_problems(dist("trust-alpha"))
    assert problems
    assert all("weak or unknown hash 'md5'" in p for p in problems)


def test_an_editable_install_cannot_be_approved_or_verified(site: FakeSite, tmp_path: Path) -> None:
    site.add(
        "trust-dev",
        plugins={"dev": "trust_dev"},
        files={"trust_dev.py": PLUGIN.format(pid="dev")},
        editable_project=tmp_path / "project",
    )
    with pytest.raises(PluginConfigError, match="trust-dev: an editable install"):
        TrustLock().approve(dist("trust-dev"))
    lock = TrustLock({"trust-dev": Approval("trust-dev", "1.0", "0" * 64)})
    verdict = lock.verify(dist("trust-dev"))
    assert verdict.status == "unverifiable"
    assert f"editable install of {tmp_path / 'project'}" in verdict.describe()


def test_a_distribution_without_record_cannot_be_approved(site: FakeSite) -> None:
    dist_info = install(site, "trust-alpha")
    (dist_info / "RECORD").unlink()
    with pytest.raises(PluginConfigError, match="trust-alpha: has no RECORD"):
        TrustLock().approve(dist("trust-alpha"))
    lock = TrustLock({"trust-alpha": Approval("trust-alpha", "1.0", "0" * 64)})
    assert lock.verify(dist("trust-alpha")) == Verdict(
        "trust-alpha", "unverifiable", ("no RECORD",)
    )


def test_a_changed_distribution_cannot_be_approved_until_reinstalled(site: FakeSite) -> None:
    install(site, "trust-alpha")
    (site.root / "trust_alpha" / "helpers.py").write_text("VALUE = 3\n")
    with pytest.raises(PluginConfigError) as error:
        TrustLock().approve(dist("trust-alpha"))
    assert str(error.value) == (
        "trust-alpha: trust_alpha/helpers.py: modified since it was installed; "
        "reinstall it before approving"
    )


def test_the_lock_file_round_trips(site: FakeSite, tmp_path: Path) -> None:
    install(site, "trust-alpha")
    install(site, "Trust_Beta")
    lock = TrustLock().approve(dist("trust-alpha")).approve(dist("Trust_Beta"))
    path = tmp_path / LOCK_FILE_NAME
    lock.write(path)
    assert TrustLock.read(path) == lock
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert list(data["approved"]) == ["trust-alpha", "trust-beta"]
    assert data["approved"]["trust-beta"]["distribution"] == "Trust_Beta"
    assert not list(tmp_path.glob(".*.partial"))
    assert lock.revoke("TRUST.BETA") == TrustLock().approve(dist("trust-alpha"))


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("[", ["lock.json: not JSON: Expecting value: line 1 column 2 (char 1)"]),
        ("[]", ["lock.json: expected a JSON object"]),
        ('{"version": 2, "approved": {}}', ["lock.json: version: expected 1"]),
        ('{"version": 1, "approved": []}', ["lock.json: approved: expected an object"]),
        (
            '{"version": 1, "approved": {"a": 1, "b": {"distribution": "b"}}, "extra": 0}',
            [
                "lock.json: approved.a: expected an object",
                "lock.json: approved.b: record_sha256: expected 64 hex digits",
                "lock.json: extra: unknown key",
            ],
        ),
        (
            json.dumps(
                {
                    "version": 1,
                    "approved": {
                        "x": {"distribution": "y", "version": None, "record_sha256": "a" * 64},
                        "z": {"distribution": "z", "version": 3, "record_sha256": "a" * 64},
                        "w": {"distribution": "w", "record_sha256": "a" * 64, "files": -1},
                        "v": {"distribution": "v", "record_sha256": "a" * 64, "colour": 1},
                    },
                }
            ),
            [
                "lock.json: approved.x: is keyed 'x' but names 'y'",
                "lock.json: approved.z: version: expected a string or null",
                "lock.json: approved.w: files: expected a count",
                "lock.json: approved.v: unknown key 'colour'",
            ],
        ),
    ],
)
def test_a_bad_lock_file_is_one_line_per_problem(text: str, lines: list[str]) -> None:
    with pytest.raises(PluginConfigError) as error:
        TrustLock.from_json(text, source="lock.json")
    assert str(error.value).splitlines() == lines


def test_reading_a_missing_lock_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="trust lock not found"):
        TrustLock.read(tmp_path / LOCK_FILE_NAME)


def test_approve_all_reports_what_it_could_not_approve(site: FakeSite) -> None:
    install(site, "trust-alpha")
    lock, problems = approve_all(TrustLock(), ["trust-alpha", "trust-ghost"])
    assert set(lock.approvals) == {"trust-alpha"}
    assert problems == ["trust-ghost: not installed"]


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    monkeypatch.setenv("MOFA_TEST_MARKERS", str(folder))
    return folder


def _ours(found: object) -> dict[str, tuple[str, str | None]]:
    entries = getattr(found, "entries", ())
    return {e.plugin_id: (e.status, e.reason) for e in entries if e.plugin_id in {"alpha", "beta"}}


def test_refuse_mode_never_imports_what_is_not_approved(site: FakeSite, markers: Path) -> None:
    install(site, "trust-alpha")
    install(site, "trust-beta")
    lock = TrustLock().approve(dist("trust-alpha")).approve(dist("trust-beta"))
    (site.root / "trust_beta" / "helpers.py").write_text("VALUE = 'tampered'\n")
    found = survey(exclusion_rule(lock, "refuse"))
    assert _ours(found) == {
        "alpha": ("discovered", None),
        "beta": (
            "disabled",
            "refused by the trust lock: trust-beta: changed since approval "
            "(trust_beta/helpers.py: modified since it was installed)",
        ),
    }
    (alpha,) = [e for e in found.entries if e.plugin_id == "alpha"]
    PluginManager().register(load_plugin_object(alpha.source))
    assert sorted(m.name for m in markers.iterdir()) == ["alpha"]


def test_warn_mode_loads_and_warns_once_per_distribution(site: FakeSite) -> None:
    install(site, "trust-alpha")
    warnings: list[str] = []
    rule = exclusion_rule(TrustLock(), "warn", warn=warnings.append)
    assert _ours(survey(rule)) == {"alpha": ("discovered", None)}
    survey(rule)
    ours = [line for line in warnings if "trust-alpha" in line]
    assert ours == ["plugin 'alpha' from trust-alpha: not approved"]


def test_the_base_rule_comes_first(site: FakeSite) -> None:
    install(site, "trust-alpha")
    calls: list[str] = []

    def deny_all(source: object) -> str:
        calls.append(getattr(source, "plugin_id", ""))
        return "denied by kernel.deny"

    distributions_asked: list[str] = []

    def distributions(name: str) -> importlib.metadata.Distribution | None:
        distributions_asked.append(name)
        return find_distribution(name)

    rule = exclusion_rule(TrustLock(), "refuse", base=deny_all, distributions=distributions)
    assert _ours(survey(rule)) == {"alpha": ("disabled", "denied by kernel.deny")}
    assert "alpha" in calls
    assert distributions_asked == []


def test_the_warning_goes_to_the_kernel_logger_by_default(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    install(site, "trust-alpha")
    survey(exclusion_rule(TrustLock(), "warn"))
    assert "plugin 'alpha' from trust-alpha: not approved" in caplog.text


def test_a_real_installed_distribution_approves_and_verifies() -> None:
    pluggy = dist("pluggy")
    lock = TrustLock().approve(pluggy)
    assert lock.approvals["pluggy"].files > 5
    assert lock.verify(pluggy).approved


def test_a_missing_distribution_is_unverifiable(site: FakeSite) -> None:
    import shutil

    dist_info = install(site, "trust-alpha")
    rule = exclusion_rule(TrustLock().approve(dist("trust-alpha")), "refuse")
    (source,) = [s for s in survey().loadable() if s.plugin_id == "alpha"]
    shutil.rmtree(dist_info)  # uninstalled between the scan and the check
    reason = rule(source)
    assert reason == "refused by the trust lock: trust-alpha: cannot be verified (not installed)"


def test_a_source_without_a_metadata_folder_is_looked_up_by_name(site: FakeSite) -> None:
    install(site, "trust-alpha")
    rule = exclusion_rule(
        TrustLock().approve(dist("trust-alpha")), "refuse", distributions=lambda name: None
    )
    (source,) = [s for s in survey().loadable() if s.plugin_id == "alpha"]
    reason = rule(attrs.evolve(source, metadata_dir=None))
    assert reason == "refused by the trust lock: trust-alpha: cannot be verified (not installed)"


def test_lock_file_name() -> None:
    assert LOCK_FILE_NAME == "mofa-trust.json"


@pytest.mark.parametrize("isolation", ["inline", "process"])
async def test_a_reload_of_changed_installed_code_must_be_approved_again(
    site: FakeSite, tmp_path: Path, isolation: Literal["inline", "process"]
) -> None:
    """Isolated, the new worker must enforce the verdicts of the reload's own trust check,
    not those its predecessor started with (which would refuse the newly approved code)."""
    from mofa_kernel import PluginLoadError
    from mofa_kernel._config import KernelSection, KernelSettings

    dist_info = install(site, "trust-alpha")
    lock_path = tmp_path / LOCK_FILE_NAME
    TrustLock().approve(dist("trust-alpha")).write(lock_path)
    kernel = KernelSection(trust="refuse", isolation=isolation)
    settings = KernelSettings(kernel=kernel, path=tmp_path / "mofa.toml")
    package = dist_info.parent / "trust_alpha" / "__init__.py"
    async with PluginManager(settings=settings) as manager:
        assert manager.discover().registered == ["alpha"]
        assert (await manager.start_all()).ok
        assert await manager.execute("alpha", "x") == "x"

        # An edit of the installed code that nobody approved: refused, the old code serves.
        edited = package.read_text(encoding="utf-8").replace("return input", "return input * 2")
        package.write_text(edited, encoding="utf-8")
        with pytest.raises(PluginLoadError, match="trust check: refused by the trust lock") as err:
            await manager.reload("alpha", force=True)
        assert "trust-alpha: changed since approval" in str(err.value)
        assert await manager.execute("alpha", "x") == "x"

        # Approved as it is now (RECORD rewritten as a reinstall would): the reload goes ahead.
        rehash(site, dist_info)
        TrustLock().approve(dist("trust-alpha")).write(lock_path)
        assert await manager.reload("alpha", force=True) is True
        assert await manager.execute("alpha", "x") == "xx"


async def test_a_reload_refuses_a_package_planted_beside_an_approved_module(
    site: FakeSite, tmp_path: Path
) -> None:
    from mofa_kernel import PluginLoadError
    from mofa_kernel._config import KernelSection, KernelSettings

    dist_info = install(site, "trust-alpha")
    TrustLock().approve(dist("trust-alpha")).write(tmp_path / LOCK_FILE_NAME)
    settings = KernelSettings(kernel=KernelSection(trust="refuse"), path=tmp_path / "mofa.toml")
    async with PluginManager(settings=settings) as manager:
        assert manager.discover().registered == ["alpha"]
        assert (await manager.start_all()).ok
        planted = dist_info.parent / "trust_alpha" / "helpers"
        planted.mkdir()
        (planted / "__init__.py").write_text("VALUE = 'planted'\n", encoding="utf-8")
        with pytest.raises(PluginLoadError) as err:
            await manager.reload("alpha", force=True)
        assert str(err.value).endswith(
            "trust check: refused by the trust lock: trust-alpha: changed since approval "
            "(trust_alpha/helpers: a folder not in RECORD (added))"
        )
        assert await manager.execute("alpha", "x") == "x"


def _spoof_bytecode(source: Path, text: str) -> None:
    """Write the ``.pyc`` the import system would take for ``source``: compiled from ``text``,
    stamped with ``source``'s modification time and size."""
    import importlib.util
    import marshal

    stat = source.stat()
    code = compile(text, str(source), "exec")
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    header += (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir(exist_ok=True)
    cached.write_bytes(header + marshal.dumps(code))


@pytest.mark.parametrize("trust", ["off", "refuse"])
def test_a_planted_bytecode_file_runs_only_without_the_lock(site: FakeSite, trust: str) -> None:
    import importlib

    install(site, "trust-alpha")
    lock = TrustLock().approve(dist("trust-alpha"))
    helpers = site.root / "trust_alpha" / "helpers.py"
    _spoof_bytecode(helpers, "VALUE = 'spoofed'\n")
    found = survey(exclusion_rule(lock, "refuse") if trust == "refuse" else None)
    (entry,) = found.find("alpha")
    assert entry.status == "discovered"
    load_plugin_object(entry.source)
    value = importlib.import_module("trust_alpha.helpers").VALUE
    assert value == (1 if trust == "refuse" else "spoofed")


def test_a_guard_passes_its_verdicts_on_to_another_process_unchanged(tmp_path: Path) -> None:
    from mofa_kernel._trust_guard import Claims, TrustGuard

    rows = [
        ("pkg/__init__.py", "sha256", "abc"),
        ("pkg/mod.py", "sha256", "def"),
        ("pkg-1.0.dist-info/RECORD", "", ""),
    ]
    guard = TrustGuard()
    approved = Claims.from_rows("pkg", tmp_path, rows, None)
    refused = Claims.from_rows("evil", tmp_path / "other", rows[1:], "evil: not approved")
    guard.judge(tmp_path / "pkg-1.0.dist-info", approved)
    guard.judge(tmp_path / "evil-1.0.dist-info", refused)
    try:
        worker = TrustGuard()
        worker.restore(json.loads(json.dumps(guard.snapshot())))  # as the wire carries it
        try:
            assert worker.snapshot() == guard.snapshot()
            assert [Claims.from_data(data) for data in worker.snapshot()] == [approved, refused]
            assert worker in sys.meta_path
        finally:
            worker.clear()
    finally:
        guard.clear()
