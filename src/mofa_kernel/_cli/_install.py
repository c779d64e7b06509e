"""``mofa-kernel plugins install|uninstall``: pip in the kernel's own environment, and what changed.

pip runs as ``python -m pip`` with the interpreter that runs mofa-kernel, so
the plugins land exactly where this kernel looks for them, whatever ``pip``
is first on PATH. pip's own output goes to stderr; stdout gets one line per
plugin id that appeared, disappeared or changed version, and, with the trust
lock on, the command that approves the new distributions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from ._output import EXIT_FAILED, EXIT_OK, Output
from ._session import load_settings

__all__ = ["changes", "register"]

#: Plugin id -> (distribution, version) of what is installed.
Installed = Mapping[str, tuple[str, str]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = commands.add_parser(
        "install",
        help="pip install plugin distributions into the kernel's environment",
        description=(
            "Run 'python -m pip install SPEC...' with the Python that runs mofa-kernel, then "
            "say which plugin ids appeared or changed. SPEC is anything pip installs: a name, "
            "a folder, a wheel, a URL. pip's output goes to stderr; pip reads its usual "
            "PIP_* variables and configuration. Exit status 1 if pip fails."
        ),
    )
    install.add_argument("specs", metavar="SPEC", nargs="+", help="what pip should install")
    install.add_argument(
        "--upgrade", "-U", action="store_true", help="upgrade what is already installed"
    )
    install.set_defaults(handler=_install)

    uninstall = commands.add_parser(
        "uninstall",
        help="pip uninstall plugin distributions from the kernel's environment",
        description=(
            "Run 'python -m pip uninstall --yes DIST...' with the Python that runs "
            "mofa-kernel, then say which plugin ids disappeared. Exit status 1 if pip fails."
        ),
    )
    uninstall.add_argument("distributions", metavar="DIST", nargs="+", help="a distribution name")
    uninstall.set_defaults(handler=_uninstall)


def _installed() -> dict[str, tuple[str, str]]:
    """Every plugin id installed now, with its distribution and version (first claimant)."""
    import importlib

    from mofa_kernel._discovery import scan_with_problems

    importlib.invalidate_caches()
    found: dict[str, tuple[str, str]] = {}
    for source in scan_with_problems().sources:
        found.setdefault(
            source.plugin_id, (source.distribution or "-", source.distribution_version or "-")
        )
    return found


def changes(before: Installed, after: Installed) -> list[str]:
    """One line per plugin id that appeared, disappeared or moved to another version."""
    lines: list[str] = []
    for pid in sorted(set(before) | set(after)):
        old, new = before.get(pid), after.get(pid)
        if old == new:
            continue
        if old is None and new is not None:
            lines.append(f"added plugin {pid} ({new[0]} {new[1]})")
        elif new is None and old is not None:
            lines.append(f"removed plugin {pid} ({old[0]} {old[1]})")
        elif old is not None and new is not None:
            lines.append(f"updated plugin {pid} ({old[0]} {old[1]} -> {new[0]} {new[1]})")
    return lines


def _pip(arguments: Sequence[str], out: Output) -> int:
    import subprocess

    command = [sys.executable, "-m", "pip", *arguments]
    out.stderr.flush()
    try:
        # pip's progress is for the person at the terminal: stderr, so stdout stays ours.
        result = subprocess.run(command, stdout=out.stderr, stderr=out.stderr, check=False)
    except OSError as exc:
        out.error(f"cannot run pip: {exc.strerror or exc}")
        return EXIT_FAILED
    if result.returncode != 0:
        out.error(
            f"pip {arguments[0]} failed (exit status {result.returncode}); nothing else was done"
        )
    return result.returncode


def _report(before: Installed, out: Output, *, trust_on: bool) -> None:
    after = _installed()
    lines = changes(before, after)
    for line in lines:
        out.line(line)
    if not lines:
        out.line("no plugin was added, removed or updated")
    new = sorted({after[pid][0] for pid in after if after.get(pid) != before.get(pid)})
    if trust_on and new:
        out.line(
            "the trust lock is on: approve what you trust with "
            f"'mofa-kernel plugins approve {' '.join(new)}'"
        )


def _install(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings(args)
    before = _installed()
    upgrade = ["--upgrade"] if args.upgrade else []
    if _pip(["install", "--disable-pip-version-check", *upgrade, *args.specs], out) != 0:
        return EXIT_FAILED
    _report(before, out, trust_on=settings.kernel.trust != "off")
    return EXIT_OK


def _uninstall(args: argparse.Namespace, out: Output) -> int:
    load_settings(args)  # a broken configuration is reported before anything is removed
    before = _installed()
    if _pip(["uninstall", "--disable-pip-version-check", "--yes", *args.distributions], out) != 0:
        return EXIT_FAILED
    _report(before, out, trust_on=False)
    return EXIT_OK
