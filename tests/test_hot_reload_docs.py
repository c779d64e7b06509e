"""The hot-reload page's examples run here: each program prints exactly its ``.out``.

After changing an example on purpose, write its new output with
``MOFA_UPDATE_DOC_EXAMPLES=1 pytest tests/test_hot_reload_docs.py`` and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _examples import check_example_output

DOCS = Path(__file__).parent.parent / "docs"
PAGE = DOCS / "hot-reload.md"
EXAMPLES = DOCS / "reload_examples"
PROGRAMS = sorted(p for p in EXAMPLES.glob("*.py") if p.with_suffix(".out").exists())


def test_there_is_a_program() -> None:
    assert [p.name for p in PROGRAMS] == ["live_edit.py"]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_example_prints_its_output(program: Path, tmp_path: Path) -> None:
    check_example_output(program, tmp_path)


def test_the_page_shows_every_example_file() -> None:
    included = set(re.findall(r"```\{literalinclude\}\s+(\S+)", PAGE.read_text(encoding="utf-8")))
    files = {f"reload_examples/{p.name}" for p in EXAMPLES.iterdir() if p.suffix in (".py", ".out")}
    assert files <= included
    assert all((DOCS / name).is_file() for name in included)
