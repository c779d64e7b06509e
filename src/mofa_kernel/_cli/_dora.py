"""``mofa-kernel dora-node --plugin ID ...``: serve plugins as a node of a dora-rs dataflow.

The parser lives here; dora, pyarrow and the serve loop are imported only
when the command runs (``mofa_kernel.dora`` holds the library side).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError
from ._session import find_entry, load_settings, make_manager, survey_plugins

if TYPE_CHECKING:
    from mofa_kernel import PluginManager

__all__ = ["register"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = subparsers.add_parser(
        "dora-node",
        help="serve plugins as a node of a dora-rs dataflow (needs mofa-kernel[dora])",
        description=(
            "Start the plugins named by --plugin and what they depend on, join the dora-rs "
            "dataflow this process was started by, and execute every input: the result goes "
            "out on output 'out', a failure on output 'error', each with the input's metadata "
            "plus plugin_id. With several --plugin, an input goes to the plugin whose id is "
            "the input's id. STOP, SIGTERM or SIGINT finish the calls in flight, shut down "
            "and exit 0. Exit status 1 if a plugin fails to start, 2 if an ID is unknown, "
            "disabled or excluded."
        ),
    )
    node.add_argument(
        "--plugin",
        dest="plugins",
        metavar="ID",
        action="append",
        required=True,
        help="a plugin to serve (repeat for several)",
    )
    node.add_argument(
        "--format",
        choices=("auto", "raw", "mofa"),
        default="auto",
        help=(
            "auto (default): unwrap a MoFA envelope when an input is one and wrap the reply; "
            "raw: never; mofa: every input must be an envelope"
        ),
    )
    node.add_argument(
        "--concurrency",
        metavar="N",
        type=_positive,
        default=1,
        help="executes run at once (default 1: inputs are executed in order)",
    )
    node.add_argument(
        "--hot-reload",
        action="store_true",
        help="watch the plugins' code and reload it while serving ([hot_reload] settings)",
    )
    node.set_defaults(handler=_dora_node)


def _dora_node(args: argparse.Namespace, out: Output) -> int:
    import asyncio
    import importlib.util
    import os
    import sys

    settings = load_settings(args)
    surveyed = survey_plugins(settings, out, warn=False)
    for pid in dict.fromkeys(args.plugins):
        entry = find_entry(surveyed, pid)
        if entry.status == "disabled":
            raise UsageError(f"plugin {entry.plugin_id!r} is not enabled: {entry.reason}")
        if entry.status == "failed":
            out.error(f"{entry.plugin_id}: {entry.reason}")
            return EXIT_FAILED
    if importlib.util.find_spec("dora") is None or importlib.util.find_spec("pyarrow") is None:
        raise UsageError(
            "dora-node needs dora-rs: pip install 'mofa-kernel[dora]' (Python 3.11 and newer)"
        )
    from mofa_kernel.dora import new_event_loop

    # A timed-out read of the node builds an error report, with a backtrace when
    # RUST_BACKTRACE is set (dora run sets it): 120 to 300 µs each instead of 20.
    os.environ.setdefault("RUST_LIB_BACKTRACE", "0")
    if sys.version_info >= (3, 11):
        # On this loop the loop's own thread reads the node: no thread hop per input.
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(_serve(args, make_manager(settings), out))
    return asyncio.run(_serve(args, make_manager(settings), out))  # no dora-rs 1.x before 3.11


async def _serve(args: argparse.Namespace, manager: PluginManager, out: Output) -> int:
    from mofa_kernel._isolation._spawn import spares

    try:
        return await _serve_plugins(args, manager, out)
    finally:
        # The spare worker (see docs/isolation.md) goes before the node exits, so that
        # a dataflow that has ended leaves no worker process behind, not even for a moment.
        await spares.close()


async def _serve_plugins(args: argparse.Namespace, manager: PluginManager, out: Output) -> int:
    import asyncio
    import signal

    from dora import Node

    from mofa_kernel import PluginError
    from mofa_kernel.dora import NodeServer, start_plugins

    plugins: list[str] = list(dict.fromkeys(args.plugins))
    async with manager:
        manager.discover()
        try:
            await start_plugins(manager, plugins)
        except PluginError as exc:
            out.error(f"{exc.plugin_id or plugins[0]}: {exc}")
            return EXIT_FAILED
        try:
            node = Node()
        except RuntimeError as exc:  # not started by a dora daemon, or the daemon is gone
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            out.error(f"cannot join a dora dataflow: {reason}")
            return EXIT_FAILED
        if args.hot_reload:
            await manager.start_hot_reload()
        server = NodeServer(
            node, manager, plugins=plugins, format=args.format, concurrency=args.concurrency
        )
        loop = asyncio.get_running_loop()
        stops = (signal.SIGTERM, signal.SIGINT)

        def stop(number: signal.Signals) -> None:
            out.error(
                f"dora-node stopping on {number.name}: finishing the calls in flight; "
                "inputs that arrive meanwhile are answered on 'error'"
            )
            server.stop()

        for number in stops:
            loop.add_signal_handler(number, stop, number)
        try:
            await server.run()
        finally:
            for number in stops:
                loop.remove_signal_handler(number)
            if args.hot_reload:
                await manager.stop_hot_reload()
    return EXIT_OK
