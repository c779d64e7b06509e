"""Configuration files bounded in depth and size (_toml_limits.py), before the parser runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mofa_kernel import PluginConfigError
from mofa_kernel._config import load_settings, tomllib
from mofa_kernel._toml_limits import MAX_BYTES, MAX_DEPTH, check_depth, read_config_bytes


def dotted(parts: int) -> str:
    return "plugins.x.settings." + ".".join(f"k{i}" for i in range(parts - 3)) + " = 1\n"


def arrays(depth: int) -> str:
    return "[plugins.x.settings]\nvalue = " + "[" * (depth - 4) + "]" * (depth - 4) + "\n"


def inline_tables(depth: int) -> str:
    return "[plugins.x.settings]\nvalue = " + "{a = " * (depth - 4) + "1" + "}" * (depth - 4) + "\n"


def header(depth: int) -> str:
    return "[plugins.x.settings." + ".".join(f"t{i}" for i in range(depth - 4)) + "]\nv = 1\n"


SHAPES = {"dotted key": dotted, "arrays": arrays, "inline tables": inline_tables, "header": header}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_limit_itself_is_accepted_and_one_more_is_refused(shape: str) -> None:
    at_limit = SHAPES[shape](MAX_DEPTH)
    assert check_depth(at_limit, "mofa.toml") == at_limit
    tomllib.loads(at_limit)  # really 100 levels: the parser builds it
    with pytest.raises(PluginConfigError) as err:
        check_depth(SHAPES[shape](MAX_DEPTH + 1), "mofa.toml")
    line = 1 if shape == "dotted key" else 2
    assert str(err.value) == (
        f"mofa.toml:{line}: nested more than 100 levels deep (tables, arrays, inline tables "
        "and dotted keys count); the limit is 100"
    )


def test_levels_add_up_across_header_key_array_and_inline_table() -> None:
    # 50 (header) + 49 (dotted key) + 1 (array) + 1 (the key inside the inline table) = 101
    text = (
        "[" + ".".join(f"h{i}" for i in range(50)) + "]\n"
        + ".".join(f"k{i}" for i in range(49)) + " = [{x = 1}]\n"
    )  # fmt: skip
    with pytest.raises(PluginConfigError, match=r"^f:2: nested more than 100"):
        check_depth(text, "f")
    check_depth(text.replace("k0.", ""), "f")  # one level less passes


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    deep = "[" * 500
    text = (
        f'a = "{deep}"\n'
        f"b = '{deep}'\n"
        f'c = """\n{deep}\n\\"""{deep}"""\n'
        f"d = '''{deep}\n'''\n"
        f"# {deep}\n"
        f'"quoted.{deep}" = [1, [2, {{x = "{deep}"}}]]\n'
        f"e = 1 # {deep}\n"
    )
    assert tomllib.loads(check_depth(text, "f"))["e"] == 1


def test_every_documented_configuration_passes(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    blocks = docs.read_text(encoding="utf-8").split("```toml\n")[1:]
    assert blocks
    for block in blocks:
        text = block.split("```", 1)[0]
        assert check_depth(text, "doc") == text


def test_a_file_over_ten_mebibytes_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(PluginConfigError) as err:
        read_config_bytes(path)
    assert str(err.value) == f"{path}: the configuration file is larger than 10 MiB (the limit)"
    path.write_bytes(b"#" * MAX_BYTES)
    assert len(read_config_bytes(path)) == MAX_BYTES


MEASURE = """\
import json, sys, tracemalloc
tracemalloc.start()
from mofa_kernel import PluginConfigError
from mofa_kernel._config import load_settings
load_settings(sys.argv[2])  # every module load_settings needs is imported before measuring
tracemalloc.reset_peak()
before = tracemalloc.get_traced_memory()[0]
try:
    load_settings(sys.argv[1])
    message = None
except PluginConfigError as exc:
    message = str(exc)
peak = tracemalloc.get_traced_memory()[1] - before
print(json.dumps({"message": message, "peak": peak}))
"""

#: Attack -> (file text, or bytes count of padding, the line number in the message).
ATTACKS: dict[str, tuple[str, str]] = {
    "dotted key 30,000 levels": (dotted(30_000), ":1: nested more than 100 levels deep"),
    "dotted key 100,000 levels": (dotted(100_000), ":1: nested more than 100 levels deep"),
    "arrays 500 deep": (arrays(500), ":2: nested more than 100 levels deep"),
    "inline tables 500 deep": (inline_tables(500), ":2: nested more than 100 levels deep"),
    "file of 12 MiB": ("# padding\n" * (12 * 1024 * 1024 // 10), ": the configuration file is"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_files_are_one_line_exit_2_in_bounded_memory(tmp_path: Path, attack: str) -> None:
    text, expected = ATTACKS[attack]
    path = tmp_path / "mofa.toml"
    path.write_text(text, encoding="utf-8")
    small = tmp_path / "small.toml"
    small.write_text("[plugins.x.settings]\nvalue = [[1], {a = 2}]\n", encoding="utf-8")
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(small)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(measured.stdout)
    assert result["message"].startswith(f"{path}{expected}")
    # The file itself (up to 10 MiB) is read; the check adds nothing of its size.
    limit = 2 * min(len(text.encode()), MAX_BYTES) + 4 * 1024 * 1024
    assert result["peak"] < limit, result
    cli = subprocess.run(
        [sys.executable, "-m", "mofa_kernel", "--config", str(path), "plugins", "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert cli.returncode == 2
    assert cli.stdout == ""
    assert cli.stderr.count("\n") == 1
    assert cli.stderr.startswith(f"mofa-kernel: {path}{expected}")


def test_load_settings_reports_depth_with_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mofa.toml"
    path.write_text("[kernel]\nagent_id = 'x'\n" + arrays(200), encoding="utf-8")
    with pytest.raises(PluginConfigError, match=rf"^{path}:4: nested more than 100 levels"):
        load_settings(path)
