"""``mofa-kernel run ID INPUT``: start a plugin and its dependencies, execute, print the output.

Only ID and what it depends on are imported: discovery is limited to those
ids (as ``MOFA_PLUGINS`` limits it, within whatever the environment already
allows), and widened while the dependencies learnt from the plugins' metadata
(from the cache where a plugin has been loaded before, else by importing it)
name plugins not yet discovered. A slow or broken plugin that ID does not
need is never imported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError
from ._session import find_entry, load_settings, make_manager, record_error, survey_plugins

if TYPE_CHECKING:
    from mofa_kernel._discovery import Survey
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


def _closure(manager: PluginManager, plugin_id: str) -> set[str]:
    graph = manager.dependency_graph()
    needed: set[str] = set()
    stack = [plugin_id]
    while stack:
        pid = stack.pop()
        if pid not in needed:
            needed.add(pid)
            stack.extend(graph.get(pid, ()))
    return needed


def _cached_closure(survey: Survey, plugin_id: str) -> set[str]:
    """``plugin_id`` and its dependencies as far as the metadata cache knows them."""
    from mofa_kernel._cache import lookup_metadata

    from ._listing import entry_row

    entries = {e.plugin_id: e for e in survey.entries if e.status == "discovered"}
    rows = [entry_row(entry) for entry in entries.values()]
    known = {
        row["id"]: tuple(data.get("dependencies") or ())
        for row, data in zip(rows, lookup_metadata(rows), strict=True)
        if isinstance(data, dict)
    }
    needed: set[str] = set()
    stack = [plugin_id]
    while stack:
        pid = stack.pop()
        if pid not in needed:
            needed.add(pid)
            stack.extend(str(dep) for dep in known.get(pid, ()))
    return needed


@contextlib.contextmanager
def _only(ids: set[str]) -> Iterator[None]:
    """``MOFA_PLUGINS`` narrowed to ``ids`` (within what it already allowed) for a discover()."""
    from mofa_kernel._source import ENV_PLUGINS

    saved = os.environ.get(ENV_PLUGINS)
    allowed = ids
    if saved is not None:
        allowed = ids & {name.strip() for name in saved.split(",")}
    os.environ[ENV_PLUGINS] = ",".join(sorted(allowed))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV_PLUGINS, None)
        else:
            os.environ[ENV_PLUGINS] = saved


@contextlib.contextmanager
def _warn_once() -> Iterator[None]:
    """Each warning of the library once, however many times discover() runs."""
    import logging

    seen: set[str] = set()

    def first_time(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in seen:
            return False
        seen.add(message)
        return True

    logger = logging.getLogger("mofa_kernel")
    logger.addFilter(first_time)
    try:
        yield
    finally:
        logger.removeFilter(first_time)


async def _start_and_execute(
    manager: PluginManager, plugin_id: str, text: str, needed: set[str]
) -> str:
    from mofa_kernel._errors import PluginError

    async with manager:
        with _warn_once():
            while True:  # discover what is needed; widen while metadata names more
                with _only(needed):
                    manager.discover()
                closure = _closure(manager, plugin_id)
                if closure <= needed:
                    break
                needed |= closure
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
    survey = survey_plugins(settings, out, warn=False)
    entry = find_entry(survey, args.plugin_id)
    if entry.status == "disabled":
        raise UsageError(f"plugin {entry.plugin_id!r} is not enabled: {entry.reason}")
    if entry.status == "failed":
        out.error(f"{entry.plugin_id}: {entry.reason}")
        return EXIT_FAILED
    try:
        needed = _cached_closure(survey, args.plugin_id)
        manager = make_manager(settings)
        output = asyncio.run(_start_and_execute(manager, args.plugin_id, args.input, needed))
    except _Failed as exc:
        out.error(f"{args.plugin_id}: {exc}")
        return EXIT_FAILED
    out.line(output)
    return EXIT_OK
