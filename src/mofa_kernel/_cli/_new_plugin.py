"""``mofa-kernel new-plugin NAME``: write a plugin distribution that installs and passes its tests.

The files come from the templates in ``mofa_kernel/_templates/plugin``. Every
check runs before the first byte is written; the files are then created in
the distribution's own folder only, each one new (never overwriting), and a
failure while writing removes what this command created.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError

if TYPE_CHECKING:
    import argparse

__all__ = [
    "Scaffold",
    "WriteError",
    "check_directory",
    "check_name",
    "check_type",
    "plan",
    "register",
    "write",
]

_NAME: Final = re.compile(r"[a-z][a-z0-9-]*", re.ASCII)
_CUSTOM_TYPE: Final = re.compile(r"\w[\w .-]*")
MAX_NAME: Final = 64
MAX_TYPE: Final = 64
#: Distributions a plugin must not be named after: the kernel, its dependencies, its test tools.
_TAKEN: Final = frozenset(
    {
        "mofa-kernel",
        "pluggy",
        "attrs",
        "cattrs",
        "packaging",
        "tomli",
        "pytest",
        "pytest-asyncio",
        "hypothesis",
        "hatchling",
        "pip",
        "setuptools",
        "wheel",
        "build",
        "twine",
    }
)
#: Package names that test runners and tools take for test folders.
_TEST_PACKAGES: Final = frozenset({"test", "tests", "testing"})
#: Names Windows keeps for devices: no file or folder can have them there.
_WINDOWS_DEVICES: Final = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])", re.ASCII)
_TEMPLATES: Final = "_templates/plugin"
#: Target path (``{package}`` filled in) -> template file; ``None`` for an empty file.
FILES: Final[Mapping[str, str | None]] = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "LICENSE": "LICENSE.tmpl",
    ".gitignore": "gitignore.tmpl",
    ".github/workflows/ci.yml": "ci.yml.tmpl",
    "src/{package}/__init__.py": "plugin.py.tmpl",
    "src/{package}/py.typed": None,
    "tests/test_{package}.py": "test_plugin.py.tmpl",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    new = subparsers.add_parser(
        "new-plugin",
        help="write a new plugin distribution, ready to install and test",
        description=(
            "Write a plugin distribution in folder D: pyproject.toml with the entry point and "
            "the ruff and mypy configuration, a src/ package with a class-style plugin and its "
            "settings class, tests that use mofa-kernel's pytest plugin, a GitHub Actions "
            "workflow (.github/workflows/ci.yml), a README and a LICENSE placeholder. It "
            "installs with pip and passes its own tests as written. Nothing is written outside "
            "D, and D must not exist or be empty. Exit status 2 when NAME, T or D is refused."
        ),
    )
    new.add_argument(
        "name",
        metavar="NAME",
        help=(
            "the plugin id, which is also the distribution name: lowercase letters, digits "
            "and '-', starting with a letter; the package is NAME with '-' turned into '_'"
        ),
    )
    new.add_argument(
        "--type",
        dest="plugin_type",
        metavar="T",
        default="tool",
        help=(
            "the plugin type, in any case: llm, tool, storage, memory, vector-db, "
            "communication, monitor or skill; any other name is a custom type (default: tool)"
        ),
    )
    new.add_argument(
        "--dir",
        dest="directory",
        metavar="D",
        help="the distribution's folder; it must not exist or must be empty (default: ./NAME)",
    )
    new.set_defaults(handler=_new_plugin)


def _show(text: str) -> str:
    """``text`` as it can be shown on one line: quoted when it holds anything unprintable."""
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a plugin distribution, or ``None`` when it can."""
    shown = repr(name)
    if not name:
        return "the plugin name is empty; use lowercase letters, digits and '-'"
    if not _NAME.fullmatch(name):
        return (
            f"invalid plugin name {shown}: use lowercase letters, digits and '-', "
            "starting with a letter (for example 'my-plugin')"
        )
    if len(name) > MAX_NAME:
        return f"invalid plugin name {shown}: at most {MAX_NAME} characters"
    if name.endswith("-") or "--" in name:
        return f"invalid plugin name {shown}: it must not end with '-' or hold '--'"
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        return f"invalid plugin name {shown}: {package!r} is a Python keyword"
    if package in sys.stdlib_module_names:
        return (
            f"invalid plugin name {shown}: the package {package!r} would hide the standard "
            f"library's module of that name"
        )
    if _WINDOWS_DEVICES.fullmatch(name):
        return f"invalid plugin name {shown}: Windows keeps that name for a device"
    if package in _TEST_PACKAGES:
        return f"invalid plugin name {shown}: the package {package!r} would pass for test code"
    if name in _TAKEN or package == "mofa_kernel":
        return f"invalid plugin name {shown}: {name!r} is the name of a distribution it needs"
    return None


def check_type(text: str) -> tuple[str, str] | str:
    """``(python_expression, label)`` for plugin type ``text``, or why it is refused."""
    from mofa_kernel._types import PluginType

    if not _CUSTOM_TYPE.fullmatch(text) or text.strip() != text or len(text) > MAX_TYPE:
        return (
            f"invalid plugin type {text!r}: give a built-in type, or a custom name of at most "
            f"{MAX_TYPE} letters, digits, spaces, '_', '.' and '-'"
        )
    parsed = PluginType.parse(text)
    if parsed.is_custom:
        return f"PluginType.custom({json.dumps(text)})", f"custom type {text}"
    return repr(parsed), parsed.variant


def check_directory(directory: Path) -> str | None:
    """Why the distribution cannot be written in ``directory``, or ``None`` when it can."""
    shown = _show(str(directory))
    try:
        exists = os.path.lexists(directory)
    except ValueError:  # a NUL character in the path
        return f"invalid folder name {shown}"
    if exists:
        if directory.is_symlink() and not directory.exists():
            return f"cannot write into {shown}: it is a broken symbolic link"
        if not directory.is_dir():
            return f"cannot write into {shown}: it exists and is not a folder"
        try:
            with os.scandir(directory) as entries:
                empty = next(entries, None) is None
        except OSError as exc:
            return f"cannot read the folder {shown}: {exc.strerror or exc}"
        if not empty:
            return (
                f"the folder {shown} is not empty; nothing was written (choose a new or empty "
                "folder with --dir)"
            )
        return None
    parent = directory.parent
    if not parent.is_dir():
        return (
            f"cannot create {shown}: its parent folder {_show(str(parent))} does not exist "
            "(create it first, nothing is written outside the plugin's folder)"
        )
    return None


@attrs.frozen
class Scaffold:
    """The files of one plugin distribution, ready to be written into ``directory``."""

    name: str
    package: str
    class_name: str
    directory: Path
    type_label: str
    #: Path relative to ``directory`` -> the file's text.
    files: Mapping[str, str]


def _class_name(name: str) -> str:
    words = "".join(part.capitalize() for part in name.split("-"))
    return words if words.endswith("Plugin") else f"{words}Plugin"


def plan(name: str, plugin_type: str = "tool", directory: Path | None = None) -> Scaffold:
    """Check the arguments and render every file; raise :class:`UsageError` saying what is wrong."""
    from importlib.resources import files
    from string import Template

    problem = check_name(name)
    if problem is not None:
        raise UsageError(problem)
    checked = check_type(plugin_type)
    if isinstance(checked, str):
        raise UsageError(checked)
    type_expr, type_label = checked
    target = Path(name) if directory is None else directory
    problem = check_directory(target)
    if problem is not None:
        raise UsageError(problem)
    package = name.replace("-", "_")
    class_name = _class_name(name)
    description = f"A mofa-kernel plugin ({type_label})."
    values = {
        "name": name,
        "package": package,
        "class_name": class_name,
        "settings_class": class_name.removesuffix("Plugin") + "Settings",
        "title": " ".join(part.capitalize() for part in name.split("-")),
        "type_expr": type_expr,
        "type_text": type_label,
        "description_toml": json.dumps(description),
        "description_py": json.dumps(description),
    }
    templates = files("mofa_kernel").joinpath(_TEMPLATES)
    rendered: dict[str, str] = {}
    for path, template in FILES.items():
        text = "" if template is None else templates.joinpath(template).read_text("utf-8")
        rendered[path.format(package=package)] = Template(text).substitute(values)
    return Scaffold(name, package, class_name, target, type_label, rendered)


class WriteError(Exception):
    """A file could not be written; what this command had created is removed again."""


def write(scaffold: Scaffold) -> list[Path]:
    """Create the scaffold's files, each one new; return their paths.

    Only ``scaffold.directory`` and what is inside it are created. On any
    failure everything created here is removed and :class:`WriteError` says
    what failed.
    """
    root = scaffold.directory
    created: list[Path] = []
    try:
        if not root.is_dir():
            root.mkdir()
            created.append(root)
        for relative, text in scaffold.files.items():
            path = root / relative
            for folder in reversed(path.relative_to(root).parents[:-1]):
                if not (root / folder).is_dir():
                    (root / folder).mkdir()
                    created.append(root / folder)
            with path.open("x", encoding="utf-8", newline="\n") as file:
                created.append(path)
                file.write(text)
    except OSError as exc:
        _remove(created)
        where = _show(str(exc.filename)) if exc.filename else _show(str(root))
        raise WriteError(f"cannot write {where}: {exc.strerror or exc}") from None
    return [path for path in created if path.is_file()]


def _remove(created: list[Path]) -> None:
    for path in reversed(created):
        try:
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
        except OSError as exc:
            print(f"mofa-kernel: could not remove {_show(str(path))}: {exc}", file=sys.stderr)


def _new_plugin(args: argparse.Namespace, out: Output) -> int:
    directory = None if args.directory is None else Path(args.directory)
    scaffold = plan(args.name, args.plugin_type, directory)
    try:
        written = write(scaffold)
    except WriteError as exc:
        out.error(str(exc))
        return EXIT_FAILED
    root = scaffold.directory
    shown = _show(str(root))
    out.line(f"Wrote the plugin distribution {scaffold.name} ({scaffold.type_label}) in {shown}:")
    for path in written:
        out.line(f"  {path.relative_to(root).as_posix()}")
    out.line()
    # The interpreter running this command has mofa-kernel installed: with it, pip needs
    # no package index to satisfy the new distribution's requirement on the kernel.
    python = shlex.quote(sys.executable)
    out.line(
        "Next, install it with the Python that runs mofa-kernel, which has the kernel, "
        "and run its tests:"
    )
    out.line(f"  cd {shlex.quote(str(root))}")
    out.line(f'  {python} -m pip install -e ".[test]"')
    out.line(f"  {python} -m pytest")
    return EXIT_OK
