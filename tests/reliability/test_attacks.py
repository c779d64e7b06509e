"""The "Attacks" table of docs/reliability.md is the list in _attacks.py, and its tests exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._attacks import ATTACKS, render_attacks
from ._report import DOC, WRITE_ENV, read_region

ROOT = Path(__file__).resolve().parents[2]


def test_the_document_shows_the_attacks_table() -> None:
    shown = read_region(DOC.read_text(encoding="utf-8"), "attacks")
    assert shown == render_attacks(), (
        f"docs/reliability.md is out of date: run the reliability suite with {WRITE_ENV}=1 "
        "(see 'Running the suite') or paste render_attacks()"
    )


@pytest.mark.parametrize("reference", sorted({test for attack in ATTACKS for test in attack.tests}))
def test_every_test_the_table_names_exists(reference: str) -> None:
    path, _, name = reference.partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.MULTILINE), reference


def test_an_attack_is_either_tested_or_pending() -> None:
    for attack in ATTACKS:
        assert bool(attack.tests) != bool(attack.pending), attack
