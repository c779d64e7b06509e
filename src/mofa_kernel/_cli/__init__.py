"""The ``mofa-kernel`` command line: a thin layer of argparse and formatting over the library.

Each command lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``handler(args, out) -> int``; a new
command (``new-plugin``, ``dev``) is one more module in :data:`COMMANDS`.
Importing ``mofa_kernel`` never imports this package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from ._output import EXIT_USAGE, PROG, Output

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    import argparse
    from typing import Final

__all__ = ["build_parser", "main"]

Handler = Callable[["argparse.Namespace", Output], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mofa-kernel")
    except PackageNotFoundError:
        return "(not installed)"


def _version_action() -> type[argparse.Action]:
    import argparse

    class VersionAction(argparse.Action):
        """``--version``: print ``mofa-kernel X.Y.Z`` and exit, computing it only then."""

        def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
            print(f"{parser.prog} {_version()}")
            parser.exit()

    return VersionAction


def _commands() -> list[Registrar]:
    from . import _cache, _dev, _dora, _new_plugin, _plugins, _run

    return [
        _plugins.register,
        _run.register,
        _dev.register,
        _cache.register,
        _new_plugin.register,
        _dora.register,
    ]


#: Module names of the commands, in the order ``--help`` lists them.
COMMANDS: Final = ("plugins", "run", "dev", "cache", "new-plugin", "dora-node")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree: global options, then one subparser per command."""
    import argparse

    version_action = _version_action()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Discover, check and run mofa-kernel plugins (entry-point group mofa.plugins).",
        epilog="Exit status: 0 success, 1 a plugin failed, 2 bad usage or configuration.",
    )
    # The version is looked up only when asked for: finding it scans every installed
    # distribution, which every other command would pay for.
    parser.add_argument(
        "--version", action=version_action, nargs=0, help="print the version and exit"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the TOML configuration file (default: $MOFA_CONFIG, else ./mofa.toml if present)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _commands():
        register(subparsers)
    # A command with subcommands but none given, or no command at all: its help.
    _help_when_bare(parser)
    return parser


def _help_when_bare(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` (and each parser of its tree that has subcommands) print its help,
    exit status 0, when it is given no subcommand."""
    import argparse

    def show_help(args: argparse.Namespace, out: Output) -> int:
        del args
        out.line(parser.format_help().rstrip())
        return 0

    parser.set_defaults(handler=show_help)
    for action in parser._actions:  # argparse has no public way to reach the subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    _help_when_bare(sub)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_USAGE


def _plain_listing(words: Sequence[str]) -> argparse.Namespace | None:
    """The arguments of exactly ``[--config FILE] plugins list [--json|--wide|-v]``, parsed
    without building the whole command tree (the first listing after an install is timed)."""
    import argparse

    from ._listing import listing_words
    from ._plugins import list_plugins

    found = listing_words(words)
    if found is None:
        return None
    config, as_json, wide = found
    return argparse.Namespace(config=config, json=as_json, wide=wide, handler=list_plugins)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``plugins list`` first tries :func:`._listing.replay`: the same listing,
    stored by an earlier run for the same installation and inputs, printed
    without parsing the command line through argparse or importing the library.
    """
    from ._listing import replay

    words = list(sys.argv[1:] if argv is None else argv)
    replayed = replay(words, Output())
    if replayed is not None:
        return replayed
    import logging

    from mofa_kernel._errors import PluginConfigError

    from ._output import UsageError, escaping_formatter

    args = _plain_listing(words)
    if args is None:
        parser = build_parser()
        try:
            args = parser.parse_args(words)
        except SystemExit as exc:  # --help, --version and usage errors end inside argparse
            return _exit_status(exc.code)
    out = Output()
    handler: Handler = args.handler
    warnings = logging.StreamHandler(out.stderr)
    warnings.setFormatter(escaping_formatter(f"{PROG}: warning: %(message)s"))
    logger = logging.getLogger("mofa_kernel")
    logger.addHandler(warnings)
    try:
        return handler(args, out)
    except (UsageError, PluginConfigError) as exc:
        out.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    finally:
        logger.removeHandler(warnings)
