"""Plugin ids (_ids.py): one rule, applied by discovery; the CLI escapes what plugins say."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fakesite import FakeSite, fake_site
from mofa_kernel import PluginLoadError
from mofa_kernel._cli import main
from mofa_kernel._cli._output import Output, escape, format_table
from mofa_kernel._discovery import survey
from mofa_kernel._ids import check_plugin_id, plugin_id_problem


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    yield from fake_site(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("plugin_id", "problem"),
    [
        ("calculator", None),
        ("word-counter_2.beta", None),
        ("réseau", None),
        ("計算機", None),
        ("", "is empty"),
        ("calc\u202eexe", "contains U+202E (right-to-left override)"),
        ("calc\u200bx", "contains U+200B (zero width space)"),
        ("two words", "contains U+0020 (space)"),
        ("line\nbreak", "contains U+000A (a control or unassigned character)"),
        ("tab\t", "contains U+0009 (a control or unassigned character)"),
        ("esc\x1b[31m", "contains U+001B (a control or unassigned character)"),
        ("nbsp\u00a0", "contains U+00A0 (no-break space)"),
        ("para\u2029", "contains U+2029 (paragraph separator)"),
        (42, "is a int, not a string"),
    ],
)
def test_the_rule(plugin_id: object, problem: str | None) -> None:
    assert plugin_id_problem(plugin_id) == problem


def test_check_raises_one_printable_line() -> None:
    check_plugin_id("calculator")
    with pytest.raises(PluginLoadError) as err:
        check_plugin_id("calc\u202eexe", origin="declared by evil 1.0 (evil:P)")
    message = str(err.value)
    assert message == (
        "invalid plugin id 'calc\\u202eexe' declared by evil 1.0 (evil:P): "
        "it contains U+202E (right-to-left override)"
    )
    assert message.isprintable()
    assert err.value.plugin_id == "calc\u202eexe"


def test_discovery_refuses_bad_ids_naming_the_distribution(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("MOFA_TEST_MARKERS", str(markers))
    site.add(
        "evil-ids",
        "1.0",
        entry_points_text=(
            "[mofa.plugins]\ncalc\u202eexe = evil_ids\ntwo words = evil_ids\ngood-one = evil_ids\n"
        ),
        files={"evil_ids/__init__.py": "raise SystemExit('never imported')\n"},
    )
    found = {e.plugin_id: e for e in survey().entries if e.source.distribution == "evil-ids"}
    assert set(found) == {"calc\u202eexe", "two words", "good-one"}
    assert found["good-one"].status == "discovered"
    assert found["calc\u202eexe"].status == "failed"
    assert found["calc\u202eexe"].reason == (
        "invalid plugin id 'calc\\u202eexe' declared by evil-ids 1.0 (evil_ids): "
        "it contains U+202E (right-to-left override); refused"
    )
    assert found["two words"].reason == (
        "invalid plugin id 'two words' declared by evil-ids 1.0 (evil_ids): "
        "it contains U+0020 (space); refused"
    )

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["plugins", "list"])
    assert code == 0
    assert "calc\\u202eexe" in out.getvalue()
    assert out.getvalue().replace("\n", "").isprintable()


def test_escape_keeps_text_and_escapes_what_moves_the_terminal() -> None:
    assert escape("plain text, ünïcödé 計算") == "plain text, ünïcödé 計算"
    assert escape("\x1b[2J\x1b[31mred\x07") == "\\x1b[2J\\x1b[31mred\\x07"
    assert escape("a\u202eb\u2066c") == "a\\u202eb\\u2066c"
    assert escape("a\nb\tc") == "a\\x0ab\\x09c"
    assert escape("a\nb\tc\rd", keep="\n\t") == "a\nb\tc\\x0dd"
    assert escape("tag\U000e0001") == "tag\\U000e0001"


def test_output_escapes_lines_errors_tables_and_json() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stdout, stderr)
    out.line("ok\n\x1b[31mred")
    out.error("first\nsecond \u202eevil")
    out.json({"id": "calc\u202eexe", "out": "\x1b[0m\x85", "emoji": "\U000e0001"})
    printed = stdout.getvalue()
    assert printed.startswith("ok\n\\x1b[31mred\n")
    assert stderr.getvalue() == "mofa-kernel: first\nmofa-kernel: second \\u202eevil\n"
    document = printed.split("\n", 2)[2]
    assert json.loads(document) == {
        "id": "calc\u202eexe", "out": "\x1b[0m\x85", "emoji": "\U000e0001"
    }  # fmt: skip
    assert document.replace("\n", "").isprintable()
    table = format_table(["id", "status"], [["calc\u202eexe", "a\nb"]])
    assert table.splitlines()[1] == "calc\\u202eexe  a\\x0ab"


def test_run_prints_a_plugin_output_escaped(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add(
        "shouty",
        "1.0",
        plugins={"shouty": "shouty"},
        files={
            "shouty.py": (
                "from mofa_kernel import PluginMetadata, PluginType, hookimpl\n\n"
                "@hookimpl\ndef plugin_metadata():\n"
                "    return PluginMetadata('shouty', 'S', PluginType.TOOL)\n\n"
                "@hookimpl\ndef execute(input):\n"
                "    if input == 'fail':\n"
                "        raise RuntimeError('\\x1b]0;owned\\x07 boom')\n"
                "    return '\\x1b[2J\\x1b[31mred'\n"
            )
        },
    )
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["run", "shouty", "x"]) == 0
        assert main(["run", "shouty", "fail"]) == 1
    assert out.getvalue() == "\\x1b[2J\\x1b[31mred\n"
    assert "\\x1b]0;owned\\x07 boom" in err.getvalue()
    assert "\x1b" not in err.getvalue()
