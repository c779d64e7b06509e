"""The metadata-folder scanner: the same plugins as ``importlib.metadata`` finds, read cheaply."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel._cli import main
from mofa_kernel._discovery import _scan_distributions, _scan_with_importlib
from mofa_kernel._scanner import (
    entry_point_target,
    kernel_refusal,
    parse_entry_points,
    read_headers,
    scan_folders,
    specifier_text,
)
from mofa_kernel._source import PLUGIN_GROUP


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.setenv("MOFA_NO_CACHE", "1")
    yield from fake_site(tmp_path, monkeypatch)


def _egg_info(root: Path, name: str, entry_points: str, requires: str = "") -> Path:
    """An old-style ``*.egg-info`` folder, as ``setup.py develop`` leaves it."""
    folder = root / f"{name.replace('-', '_')}-2.0-py3.11.egg-info"
    folder.mkdir()
    (folder / "PKG-INFO").write_text(
        f"Metadata-Version: 1.2\nName: {name}\nVersion: 2.0\n", encoding="utf-8"
    )
    (folder / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    if requires:
        (folder / "requires.txt").write_text(requires, encoding="utf-8")
    return folder


def _odd_site(site: FakeSite) -> None:
    site.add("plain-dist", plugins={"plain": "plain_mod:Plugin"}, files={"plain_mod.py": ""})
    site.add(
        "odd-format",
        requires=["mofa_kernel (>=0.1, <99)"],
        entry_points_text=(
            "# a comment\n\n[console_scripts]\nodd = odd:main\r\n"
            "  [mofa.plugins]  \n\t odd-one   =   odd_pkg.sub : Thing  [extra1]  \n"
            "odd-two=odd_pkg\n[other]\nx = y\n[mofa.plugins]\nodd-three = odd_pkg.three:P\n"
        ),
        files={"odd_pkg/__init__.py": "", "odd_pkg/sub.py": ""},
    )
    site.add("dup-a", plugins={"same": "dup_a:Plugin"}, requires=["MOFA-Kernel>=0.1"])
    site.add("dup-b", plugins={"same": "dup_b:Plugin"}, requires=['mofa-kernel>=0.1; extra == "x"'])
    site.add("refused", plugins={"too-new": "refused:Plugin"}, requires=["mofa-kernel>=99"])
    site.add(
        "marked",
        plugins={"marked": "marked:P"},
        requires=['mofa-kernel[a]>=0.1;python_version>"3"'],
    )
    site.add("console-only", entry_points_text="[console_scripts]\nc = c:main\n")
    _egg_info(
        site.root, "old-egg", "[mofa.plugins]\negg-plugin = old_egg:Plugin\n", "mofa-kernel>=0.1\n"
    )
    big = "".join(f"x{i} = m:f\n" for i in range(8000))  # beyond one read
    site.add("big-file", entry_points_text=f"[console_scripts]\n{big}[mofa.plugins]\nbig = big:P\n")


def test_the_scanner_finds_what_importlib_metadata_finds(site: FakeSite) -> None:
    _odd_site(site)
    fast = scan_folders(PLUGIN_GROUP)
    assert fast is not None
    fast_result, fast_watch = _scan_distributions(PLUGIN_GROUP)
    slow_result, slow_watch = _scan_with_importlib(PLUGIN_GROUP)
    assert fast_result.sources == slow_result.sources
    assert [s.metadata_dir for s in fast_result.sources] == [
        s.metadata_dir for s in slow_result.sources
    ]
    assert fast_result.refusals == slow_result.refusals
    assert fast_result.problems == slow_result.problems
    assert sorted(fast_watch) == sorted(slow_watch)
    ours = {s.plugin_id: s for s in fast_result.sources if s.distribution != "mofa-kernel"}
    assert {
        "plain",
        "odd-one",
        "odd-two",
        "odd-three",
        "same",
        "too-new",
        "egg-plugin",
        "big",
    } <= set(ours)
    assert ours["odd-one"].entry_point == "odd_pkg.sub : Thing  [extra1]"
    assert ours["odd-one"].path == site.root / "odd_pkg" / "sub.py"
    assert ours["odd-one"].requires_kernel == "<99,>=0.1"
    assert ours["egg-plugin"].distribution == "old-egg"
    assert ours["egg-plugin"].requires_kernel == ">=0.1"
    refusal = dict(zip(fast_result.sources, fast_result.refusals or (), strict=True))
    assert refusal[ours["too-new"]] is not None
    assert "requires mofa-kernel>=99" in str(refusal[ours["too-new"]])


def test_a_shadowed_distribution_is_ignored(site: FakeSite, tmp_path: Path) -> None:
    site.add("twice", plugins={"first": "twice:P"})
    later = tmp_path / "later"
    later.mkdir()
    (later / "twice-2.0.dist-info").mkdir()
    (later / "twice-2.0.dist-info" / "METADATA").write_text("Name: twice\nVersion: 2.0\n")
    (later / "twice-2.0.dist-info" / "entry_points.txt").write_text(
        "[mofa.plugins]\nsecond = t:P\n"
    )
    sys.path.append(str(later))
    try:
        fast = scan_folders(PLUGIN_GROUP)
        assert fast is not None
        ids = [row[0] for row in fast.rows]
        assert "first" in ids
        assert "second" not in ids
    finally:
        sys.path.remove(str(later))


def test_a_dist_info_without_metadata_is_reported(site: FakeSite) -> None:
    folder = site.add("no-meta", plugins={"orphan": "orphan:P"})
    (folder / "METADATA").unlink()
    fast = scan_folders(PLUGIN_GROUP)
    assert fast is not None
    assert "orphan" not in [row[0] for row in fast.rows]
    (problem,) = [p for p in fast.problems if "has no Name" in p]
    assert str(site.root) in problem


def test_non_utf8_files_are_reported_not_fatal(site: FakeSite) -> None:
    bad_entry_points = site.add("bad-ep", plugins={"bad-ep": "bad:P"})
    (bad_entry_points / "entry_points.txt").write_bytes(b"[mofa.plugins]\nbad-ep = bad:P # \xff\n")
    bad_metadata = site.add("bad-meta", plugins={"bad-meta": "bad:P"})
    (bad_metadata / "METADATA").write_bytes(b"Name: bad-meta\nSummary: caf\xe9\n")
    site.add("fine", plugins={"fine": "fine:P"})
    fast = scan_folders(PLUGIN_GROUP)
    assert fast is not None
    assert "fine" in [row[0] for row in fast.rows]
    assert not {"bad-ep", "bad-meta"} & {row[0] for row in fast.rows}
    assert any(p.startswith("bad-ep: unreadable entry points (not UTF-8") for p in fast.problems)
    assert any("bad_meta-1.0.dist-info" in p and "not UTF-8" in p for p in fast.problems)


def test_an_entry_point_line_without_equals_makes_the_file_unreadable() -> None:
    with pytest.raises(ValueError, match="not enough values"):
        parse_entry_points("[console_scripts]\nbroken\n[mofa.plugins]\na = b\n", "mofa.plugins")
    assert parse_entry_points("stray = before any section\n[g]\na=b=c\n", "g") == [("a", "b=c")]


def test_entry_point_targets_match_importlib_metadata() -> None:
    import importlib.metadata

    for value in ["a.b:C.d", "a.b", " a : b [x, y]", "a:b[x]", "not valid!", "a:", "a.b:c d"]:
        ep = importlib.metadata.EntryPoint(name="", value=value, group="")
        expected = (ep.module, ep.attr or None) if ep.pattern.match(value) else (value, None)
        assert entry_point_target(value) == expected, value


def test_headers_are_read_as_email_reads_them(tmp_path: Path) -> None:
    (tmp_path / "METADATA").write_text(
        "Name: folded\nVersion:  1.0\r\nRequires-Dist: a\nRequires-Dist: b\nSummary: one\n"
        "  two\n\nName: in-the-body\n",
        encoding="utf-8",
    )
    headers = read_headers(str(tmp_path))
    assert headers is not None
    assert headers["name"] == ["folded"]
    assert headers["version"] == ["1.0"]
    assert headers["requires-dist"] == ["a", "b"]
    assert read_headers(str(tmp_path / "missing")) is None


def test_specifiers_are_spelled_as_packaging_spells_them() -> None:
    from packaging.specifiers import SpecifierSet

    for text in [">=0.1", " >= 0.1 , < 2 ", "==1.0", "!=1.*", "~=1.2", ">=1.0rc1", ""]:
        assert specifier_text(text) == str(SpecifierSet(text)), text
    assert specifier_text("[extra]>=1") is None


@pytest.mark.parametrize(
    ("specifier", "version"),
    [(">=0.1", "0.1.0"), ("<0.1", "0.1"), ("==0.1", "0.1.0"), ("!=0.1", "0.1.0"),
     (">0.1", "0.1.0"), ("<=0.1", "0.2"), ("~=0.1", "0.2"), (">=0.1", "0.1.dev0"),
     ("nonsense", "1.0")],
)  # fmt: skip
def test_kernel_refusals_match_packaging(specifier: str, version: str) -> None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    refusal = kernel_refusal("p", "d", specifier, version)
    try:
        accepted = SpecifierSet(specifier).contains(Version(version), prereleases=True)
    except InvalidSpecifier:
        assert refusal is not None
        assert "unreadable requirement" in refusal
        return
    assert (refusal is None) == accepted


def _listing(argv: list[str]) -> list[dict[str, object]]:
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        assert main(argv) == 0
    finally:
        sys.stdout = stdout
    data = json.loads(out.getvalue())
    assert isinstance(data, list)
    return data


def test_the_cold_listing_equals_the_full_command(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _odd_site(site)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOFA_NO_CACHE")
    monkeypatch.setenv("MOFA_CACHE_DIR", str(tmp_path / "cold-cache"))
    site.add("weird-ids", entry_points_text="[mofa.plugins]\nwe ird = w:P\nzero\u200bwidth = w:Q\n")
    cold = _listing(["plugins", "list", "--json"])  # no configuration file: the cold path
    monkeypatch.setenv("MOFA_CACHE_DIR", str(tmp_path / "full-cache"))
    (tmp_path / "empty.toml").write_text("", encoding="utf-8")
    full = _listing(["--config", "empty.toml", "plugins", "list", "--json"])
    assert cold == full
    by_id = {row["id"]: row for row in cold}
    assert by_id["too-new"]["status"] == "failed"
    assert [row["status"] for row in cold if row["id"] == "same"] == ["failed", "failed"]
    assert by_id["we ird"]["status"] == "failed"
    assert str(by_id["zero\u200bwidth"]["reason"]).startswith("invalid plugin id")


COLD = """
import sys
from mofa_kernel._cli import main
assert main(["plugins", "list", "--json"]) == 0
heavy = {"attrs", "cattrs", "argparse", "packaging", "importlib.metadata", "mofa_kernel._discovery"}
print(sorted(heavy & set(sys.modules)), file=sys.stderr)
"""


def test_a_cold_listing_imports_nothing_heavy(site: FakeSite, tmp_path: Path) -> None:
    site.add("light", plugins={"light": "light:P"}, requires=["mofa-kernel>=0.1"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOFA_")}
    env["MOFA_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(site.root)
    result = subprocess.run(
        [sys.executable, "-c", COLD],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
    assert [row["id"] for row in json.loads(result.stdout)] == ["light"]
