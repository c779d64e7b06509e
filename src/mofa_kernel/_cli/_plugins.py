"""``mofa-kernel plugins list|info|check|graph``: what is installed, and whether it works."""

from __future__ import annotations

import argparse
import json
import re
from typing import TYPE_CHECKING, Any, Final

from ._listing import ROW_KEYS, entry_row, fit_table, print_rows, remember, terminal_width
from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError
from ._session import (
    find_entry,
    load_settings,
    make_manager,
    record_error,
    survey_plugins,
    survey_warnings,
)

if TYPE_CHECKING:
    from mofa_kernel._config import KernelSettings
    from mofa_kernel._discovery import SurveyEntry
    from mofa_kernel._manager import PluginManager
    from mofa_kernel._metadata import PluginMetadata
    from mofa_kernel._records import OutcomeStatus
    from mofa_kernel._types import PluginState

__all__ = ["list_plugins", "register"]

_MERMAID_ID: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plugins = subparsers.add_parser(
        "plugins",
        help="list, inspect, check and graph the installed plugins",
        description="Work with the plugins installed in entry-point group mofa.plugins.",
    )
    commands = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")

    list_parser = commands.add_parser(
        "list",
        help="every discovered plugin, excluded ones too (imports nothing)",
        description="List every discovered plugin without importing any.",
    )
    shape = list_parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print a JSON array")
    shape.add_argument(
        "--wide",
        "-v",
        action="store_true",
        help="every column in full (distribution, entry point, path), however wide",
    )
    list_parser.set_defaults(handler=list_plugins)

    info = commands.add_parser(
        "info",
        help="one plugin in full",
        description="Show one plugin in full; an enabled plugin is imported to read its metadata.",
    )
    info.add_argument("plugin_id", metavar="ID", help="the plugin id (its entry-point name)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_info)

    check = commands.add_parser(
        "check",
        help="load, start, health-check, stop and unload every enabled plugin",
        description=(
            "Load, start, health-check, stop and unload every enabled plugin, in dependency "
            "order. Exit status 1 if any plugin failed or was skipped."
        ),
    )
    check.add_argument("--json", action="store_true", help="print a JSON array")
    check.set_defaults(handler=_check)

    graph = commands.add_parser(
        "graph",
        help="the dependency graph",
        description="Print the dependency graph; an edge points from a plugin to a dependency.",
    )
    graph.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="Mermaid flowchart (default) or Graphviz DOT",
    )
    graph.set_defaults(handler=_graph)

    approve = commands.add_parser(
        "approve",
        help="approve installed plugin distributions in the trust lock",
        description=(
            "Record the named distributions, as installed now, in the trust lock "
            '(kernel.trust_file). With kernel.trust = "warn" or "refuse", a plugin whose '
            "distribution is not approved, or has changed since, is reported or refused."
        ),
    )
    approve.add_argument(
        "distributions", metavar="DIST", nargs="*", help="a distribution name to approve"
    )
    approve.add_argument(
        "--all", action="store_true", help="approve every distribution that provides a plugin"
    )
    approve.set_defaults(handler=_approve)

    from . import _install

    _install.register(commands)


def _metadata_data(metadata: PluginMetadata | None) -> Any:
    if metadata is None:
        return None
    from mofa_kernel._wire import to_data

    return to_data(metadata)


def _entry_data(entry: SurveyEntry, settings: KernelSettings) -> dict[str, Any]:
    row = entry_row(entry, settings.plugin_isolation(entry.plugin_id))
    return {key: row[key] for key in ROW_KEYS}


def list_plugins(args: argparse.Namespace, out: Output) -> int:
    """``plugins list``: every discovered plugin, as a table or JSON."""
    from mofa_kernel import _cache

    inputs = _cache.listing_inputs(args.config) if _cache.enabled() else None
    settings = load_settings(args)
    surveyed = survey_plugins(settings, out, warn=False)
    warnings = survey_warnings(settings, surveyed)
    for warning in warnings:
        out.error(f"warning: {warning}")
    entries = sorted(surveyed.entries, key=lambda e: (e.plugin_id, e.source.distribution or ""))
    rows = [entry_row(entry, settings.plugin_isolation(entry.plugin_id)) for entry in entries]
    if settings.kernel.trust == "off":
        # With the trust lock on, every listing checks the files again: never replayed.
        remember(args.config, inputs, surveyed.fingerprint, rows, warnings)
    print_rows(rows, as_json=args.json, out=out, wide=args.wide)
    return EXIT_OK


def _load_metadata(
    settings: KernelSettings, entry: SurveyEntry
) -> tuple[PluginMetadata | None, str | None]:
    """Import one plugin (and no other) to read its metadata; returns (metadata, error).

    What it learns goes to the metadata cache, for ``plugins list``.
    """
    from mofa_kernel._cache import MetadataNotes
    from mofa_kernel._discovery import load_plugin_object
    from mofa_kernel._errors import PluginError

    manager = make_manager(settings)
    pid = entry.plugin_id
    notes = MetadataNotes.before([entry.source])
    try:
        registered = manager.register(load_plugin_object(entry.source))
    except PluginError as exc:
        return None, str(exc)
    metadata = manager.record(registered).metadata
    if registered != pid:
        return metadata, (
            f"entry point {pid!r} names a plugin whose metadata id is {registered!r}; "
            f"they must match"
        )
    if metadata is not None:
        notes.learned(entry.source, metadata)
        notes.save()
    return metadata, None


def _worker_metadata(
    settings: KernelSettings, entry: SurveyEntry
) -> tuple[PluginMetadata | None, str | None]:
    """An isolated plugin's metadata, learned from a worker: the host never imports it."""
    from mofa_kernel._errors import PluginError
    from mofa_kernel._isolation._setup import read_metadata, worker_spec

    try:
        return read_metadata(worker_spec(entry.source, settings)), None
    except PluginError as exc:
        return None, str(exc)


def _cached_metadata(entry: SurveyEntry) -> PluginMetadata | None:
    """The metadata the cache holds for a plugin that is not imported now, if still valid."""
    from mofa_kernel._cache import lookup_metadata
    from mofa_kernel._errors import SerializationError
    from mofa_kernel._metadata import PluginMetadata
    from mofa_kernel._wire import from_data

    (data,) = lookup_metadata([entry_row(entry)])
    if data is None:
        return None
    try:
        return from_data(PluginMetadata, data)
    except SerializationError:
        return None


def _info(args: argparse.Namespace, out: Output) -> int:
    from mofa_kernel._wire import to_data

    settings = load_settings(args)
    entry = find_entry(survey_plugins(settings, out), args.plugin_id)
    data = _entry_data(entry, settings)
    error: str | None = None
    metadata = None
    if entry.status == "discovered" and data["isolation"] == "process":
        metadata, error = _worker_metadata(settings, entry)
    elif entry.status == "discovered":
        metadata, error = _load_metadata(settings, entry)
    else:
        metadata = _cached_metadata(entry)
        if entry.status == "failed":
            error = entry.reason
    data["status"] = "failed" if error is not None else entry.status
    data["error"] = error
    data["metadata"] = _metadata_data(metadata)
    data["config"] = to_data(settings.plugin_config(entry.plugin_id))
    data["timeout"] = settings.plugin_timeout(entry.plugin_id)
    if args.json:
        out.json(data)
    else:
        _print_info(data, metadata, out)
    if error is not None and not args.json:
        out.error(f"{entry.plugin_id}: {error}")
    return EXIT_FAILED if error is not None else EXIT_OK


def _print_info(data: dict[str, Any], metadata: PluginMetadata | None, out: Output) -> None:
    dist = data["distribution"] or "-"
    if data["distribution_version"]:
        dist = f"{dist} {data['distribution_version']}"
    requirement = data["requires_kernel"]
    fields: list[tuple[str, str]] = [
        ("id", data["id"]),
        ("distribution", dist),
        ("entry point", data["entry_point"]),
        ("path", data["path"] or "-"),
        ("requires", "-" if requirement is None else f"mofa-kernel{requirement or ' (any)'}"),
        ("enabled", "yes" if data["enabled"] else "no"),
        ("isolation", data["isolation"]),
        ("status", data["status"]),
    ]
    if data["reason"] and data["status"] == "disabled":
        fields.append(("reason", data["reason"]))
    if metadata is not None:
        fields += [
            ("name", metadata.name),
            ("type", str(metadata.plugin_type)),
            ("version", metadata.version),
            ("description", metadata.description or "-"),
            ("priority", metadata.priority.variant),
            ("dependencies", ", ".join(metadata.dependencies) or "-"),
            ("capabilities", ", ".join(metadata.capabilities) or "-"),
            ("author", metadata.author or "-"),
        ]
    config = data["config"]
    fields += [
        ("auto start", "yes" if config["auto_start"] else "no"),
        ("timeout", f"{data['timeout']:g}s"),
        ("settings", json.dumps(config["settings"], ensure_ascii=False, sort_keys=True)),
    ]
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        out.line(f"{label + ':':<{width}} {value}")


async def _run_check(
    manager: PluginManager,
) -> tuple[dict[str, tuple[OutcomeStatus, str | None]], dict[str, PluginState]]:
    """Bring every enabled plugin up and down again; per id, (status, error), and the error
    state of each plugin that failed (the state a failure leaves, before the cleanup)."""
    from mofa_kernel._events import PluginEvent

    failed_in: dict[str, PluginState] = {}

    def note(event: object) -> None:
        if isinstance(event, PluginEvent.StateChanged) and event.new_state.is_error:
            failed_in[event.plugin_id] = event.new_state

    manager.add_listener(note)
    async with manager:
        manager.discover()
        started = await manager.start_all()
        results = {pid: (o.status, o.error) for pid, o in started.outcomes.items()}
        # start_all leaves auto_start = false plugins alone; a check exercises them too.
        rest = [
            pid
            for pid in manager.start_order()
            if pid not in results and manager.record(pid).enabled
        ]
        if rest:
            more = await manager.start_all(rest)
            results.update((pid, (o.status, o.error)) for pid, o in more.outcomes.items())
        for pid, healthy in (await manager.health_check()).items():
            if results.get(pid, ("",))[0] == "ok" and not healthy:
                error = manager.record(pid).error
                results[pid] = (
                    "failed",
                    f"health check failed: {error}" if error else "health check failed",
                )
        for report in (await manager.stop_all(), await manager.unload_all()):
            for pid, outcome in report.outcomes.items():
                if outcome.status == "failed" and results.get(pid, ("ok",))[0] == "ok":
                    results[pid] = ("failed", outcome.error)
    return results, failed_in


def _check(args: argparse.Namespace, out: Output) -> int:
    import asyncio

    from mofa_kernel._wire import to_data

    settings = load_settings(args)
    manager = make_manager(settings)
    results, failed_in = asyncio.run(_run_check(manager))
    rows: list[dict[str, Any]] = []
    for record in sorted(manager.records(), key=lambda r: r.plugin_id):
        pid = record.plugin_id
        if record.status == "disabled" or not record.enabled:
            status, error = "disabled", None
        elif pid in results:
            status, error = results[pid]
        elif record_error(record) is not None:
            status, error = "failed", record_error(record)
        else:
            problem = manager.dependency_error(pid)
            status, error = "skipped", str(problem) if problem else "not started"
        source = record.source
        rows.append(
            {
                "id": pid,
                "status": status,
                "state": to_data(
                    failed_in.get(pid, record.state) if status == "failed" else record.state
                ),
                "error": error,
                "reason": record.reason if status == "disabled" else None,
                "distribution": source.distribution if source else None,
                "entry_point": source.entry_point if source else None,
            }
        )
    bad = [row for row in rows if row["status"] in ("failed", "skipped")]
    if args.json:
        out.json(rows)
    elif not rows:
        out.line("No plugins installed (entry-point group mofa.plugins).")
    else:
        table = [
            [
                row["id"],
                row["status"],
                _state_word(row["state"]),
                row["reason"] or row["error"] or "",
            ]
            for row in rows
        ]
        out.line(fit_table(["ID", "STATUS", "STATE", "NOTE"], table, terminal_width()))
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
        disabled = len(rows) - sum(counts.values())
        out.line(
            f"\n{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped, "
            f"{disabled} disabled"
        )
        for row in bad:
            out.error(f"{row['id']}: {row['status']}: {row['error']}")
    return EXIT_FAILED if bad else EXIT_OK


def _state_word(state: Any) -> str:
    return state if isinstance(state, str) else next(iter(state))


def _graph(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings(args)
    manager = make_manager(settings)
    manager.discover()
    records = [r for r in manager.records() if r.enabled and r.status != "disabled"]
    nodes = sorted(r.plugin_id for r in records)
    edges = sorted(manager.dependency_graph().items())
    missing = sorted({d for _, deps in edges for d in deps} - set(nodes))
    if args.format == "dot":
        out.line(_dot(nodes, edges, missing))
    else:
        out.line(_mermaid(nodes, edges, missing))
    failed = [r for r in records if record_error(r) is not None]
    for record in failed:
        out.error(f"{record.plugin_id}: {record_error(record)}")
    return EXIT_FAILED if failed else EXIT_OK


def _mermaid(nodes: list[str], edges: list[tuple[str, tuple[str, ...]]], missing: list[str]) -> str:
    names: dict[str, str] = {}
    lines = ["graph TD"]
    for pid in [*nodes, *missing]:
        if _MERMAID_ID.fullmatch(pid) and pid.lower() != "end":
            names[pid] = pid
        else:
            names[pid] = f"n{sum(name != key for key, name in names.items()) + 1}"
            lines.append(f"    {names[pid]}[{json.dumps(pid, ensure_ascii=False)}]")
    linked = {pid for pid, deps in edges if deps} | {d for _, deps in edges for d in deps}
    lines += [f"    {names[pid]}" for pid in nodes if pid not in linked and names[pid] == pid]
    lines += [f"    {names[pid]} --> {names[dep]}" for pid, deps in edges for dep in deps]
    if missing:
        lines.append("    classDef missing stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(names[pid] for pid in missing)} missing")
    return "\n".join(lines)


def _dot(nodes: list[str], edges: list[tuple[str, tuple[str, ...]]], missing: list[str]) -> str:
    def quoted(pid: str) -> str:
        return json.dumps(pid, ensure_ascii=False)

    lines = ["digraph plugins {"]
    lines += [f"    {quoted(pid)};" for pid in nodes]
    lines += [f"    {quoted(pid)} [style=dashed];" for pid in missing]
    lines += [f"    {quoted(pid)} -> {quoted(dep)};" for pid, deps in edges for dep in deps]
    lines.append("}")
    return "\n".join(lines)


def _approve(args: argparse.Namespace, out: Output) -> int:
    from mofa_kernel._discovery import normalize_name, scan
    from mofa_kernel._trust import TrustLock, approve_all

    settings = load_settings(args)
    path = settings.trust_lock_path()
    lock = TrustLock.read(path) if path.exists() else TrustLock()
    names = list(args.distributions)
    if args.all:
        names += sorted({s.distribution for s in scan() if s.distribution is not None})
    if not names:
        raise UsageError("name the distributions to approve, or use --all")
    lock, problems = approve_all(lock, names)
    lock.write(path)
    failed = {normalize_name(problem.split(":", 1)[0]) for problem in problems}
    for name in dict.fromkeys(normalize_name(name) for name in names):
        approval = lock.approvals.get(name)
        if approval is not None and name not in failed:
            out.line(
                f"approved {approval.distribution} {approval.version} "
                f"({approval.files} files) in {path}"
            )
    for problem in problems:
        out.error(problem)
    return EXIT_FAILED if problems else EXIT_OK
