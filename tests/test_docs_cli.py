"""docs/cli.md keeps in step with the argparse parser: every command and option is documented.

Each command that takes no further subcommand has a section headed
``## `mofa-kernel COMMAND` `` that names each of its options and arguments,
and a line in the synopsis at the top of the page; every such section is a
command that exists; the global options have their own section.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mofa_kernel._cli import build_parser

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
HEADING = re.compile(r"^## `mofa-kernel ([^`]+)`", re.MULTILINE)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands(
    parser: argparse.ArgumentParser | None = None, prefix: tuple[str, ...] = ()
) -> dict[str, argparse.ArgumentParser]:
    """Every command that takes no subcommand, as ``"plugins list"`` -> its parser."""
    parser = parser if parser is not None else build_parser()
    found: dict[str, argparse.ArgumentParser] = {}
    for name, sub in _subcommands(parser).items():
        path = (*prefix, name)
        nested = commands(sub, path)
        found.update(nested or {" ".join(path): sub})
    return found


def words(parser: argparse.ArgumentParser) -> list[str]:
    """What the page must name for ``parser``: each option string, each argument's metavar."""
    named = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            named += action.option_strings
        else:
            named.append(str(action.metavar or action.dest))
    return named


def sections() -> dict[str, str]:
    """Command -> the text of its section in the page."""
    text = PAGE.read_text(encoding="utf-8")
    found = {}
    for match in HEADING.finditer(text):
        end = text.find("\n## ", match.end())
        found[match.group(1).split(" [")[0].strip()] = text[match.end() : end]
    return found


def synopsis() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("```text\n")
    return text[start : text.index("```\n", start + 1)]


def test_there_are_commands() -> None:
    assert {"plugins list", "run", "new-plugin"} <= set(commands())


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_has_a_section_naming_its_options(command: str) -> None:
    found = sections()
    assert command in found, f"docs/cli.md has no section '## `mofa-kernel {command}`'"
    missing = [word for word in words(commands()[command]) if word not in found[command]]
    assert not missing, f"the section of {command!r} does not name {missing}"


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_is_in_the_synopsis(command: str) -> None:
    assert f"\nmofa-kernel {command}" in synopsis()


def test_every_section_is_a_command() -> None:
    assert set(sections()) <= set(commands())


def test_global_options_are_documented() -> None:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## Global options")
    section = text[start : text.index("\n## ", start + 1)]
    missing = [word for word in words(build_parser()) if word not in section]
    assert not missing
