"""``mofa-kernel dev``: run the plugins with hot reload on, print every event, take commands.

The command's parser lives here; the session (asyncio, the reloader) lives in
``_dev_session`` and is imported only when ``dev`` runs, so that the other
commands do not pay for it.
"""

from __future__ import annotations

import argparse

from ._output import Output
from ._session import load_settings, make_manager

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="run the plugins with hot reload on, print every event, read commands on stdin",
        description=(
            "Discover and start the plugins, watch their code and reload it when it changes "
            "(strategy from [hot_reload] in the configuration), and print every event as a "
            "line. Commands on stdin, one a line: 'ID INPUT' executes, 'reload ID' reloads "
            "now, 'list' and 'status' show the plugins' states, 'help' the commands, 'quit' "
            "shuts down. The configuration is read once, at start: restart dev after editing "
            "mofa.toml."
        ),
    )
    dev.add_argument("--json", action="store_true", help="print one JSON object per line")
    dev.set_defaults(handler=_dev)


def _dev(args: argparse.Namespace, out: Output) -> int:
    import asyncio
    import sys

    from ._dev_session import DevSession, stdin_lines

    settings = load_settings(args)
    session = DevSession(make_manager(settings), out, as_json=args.json)
    return asyncio.run(session.run(stdin_lines(sys.stdin)))
