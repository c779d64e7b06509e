"""``mofa-kernel run ID INPUT``: start a plugin and its dependencies, execute, print the output."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError
from ._session import find_entry, load_settings, make_manager, record_error, survey_plugins

if TYPE_CHECKING:
    from mofa_kernel._manager import PluginManager

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="start a plugin and its dependencies, execute INPUT, print the output",
        description=(
            "Start plugin ID and what it depends on, execute INPUT, print the output, "
            "then shut everything down. Exit status 1 if a plugin fails, 2 if ID is unknown, "
            "disabled or excluded."
        ),
    )
    run.add_argument("plugin_id", metavar="ID", help="the plugin id (its entry-point name)")
    run.add_argument("input", metavar="INPUT", help="the text passed to the plugin's execute")
    run.set_defaults(handler=_run)


class _Failed(Exception):
    """A plugin failed on the way: the message is the one line to show."""


async def _start_and_execute(manager: PluginManager, plugin_id: str, text: str) -> str:
    from mofa_kernel._errors import PluginError

    async with manager:
        manager.discover()
        error = record_error(manager.record(plugin_id))
        if error is not None:
            raise _Failed(error)
        report = await manager.start_all([plugin_id])
        outcome = report.outcomes.get(plugin_id)
        if outcome is not None and outcome.status != "ok":
            raise _Failed(outcome.error or outcome.status)
        try:
            return await manager.execute(plugin_id, text)
        except PluginError as exc:
            raise _Failed(str(exc)) from exc


def _run(args: argparse.Namespace, out: Output) -> int:
    import asyncio

    settings = load_settings(args)
    entry = find_entry(survey_plugins(settings, out, warn=False), args.plugin_id)
    if entry.status == "disabled":
        raise UsageError(f"plugin {entry.plugin_id!r} is not enabled: {entry.reason}")
    if entry.status == "failed":
        out.error(f"{entry.plugin_id}: {entry.reason}")
        return EXIT_FAILED
    try:
        output = asyncio.run(_start_and_execute(make_manager(settings), args.plugin_id, args.input))
    except _Failed as exc:
        out.error(f"{args.plugin_id}: {exc}")
        return EXIT_FAILED
    out.line(output)
    return EXIT_OK
