"""``mofa-kernel cache info|clear``: where the discovery and metadata cache is, and emptying it."""

from __future__ import annotations

import argparse

from ._output import EXIT_OK, Output, format_table

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = subparsers.add_parser(
        "cache",
        help="show or clear the discovery and metadata cache",
        description=(
            "The cache that makes discovery and 'plugins list' fast. It is checked against the "
            "installation on every use, so clearing it is never needed for correctness. "
            "MOFA_NO_CACHE=1 switches it off; MOFA_CACHE_DIR moves it."
        ),
    )
    commands = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND", required=True)
    info = commands.add_parser(
        "info", help="where the cache is and what it holds", description="Show the cache."
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_info)
    clear = commands.add_parser(
        "clear",
        help="delete every cache file",
        description="Delete every file of the cache (for every interpreter that shares it).",
    )
    clear.set_defaults(handler=_clear)


def _info(args: argparse.Namespace, out: Output) -> int:
    from mofa_kernel import _cache

    files = _cache.cache_files()
    data = {
        "directory": _cache.cache_dir(),
        "enabled": _cache.enabled(),
        "schema": _cache.SCHEMA,
        "files": [{"name": name, "size": size} for name, size in files],
        "size": sum(size for _, size in files),
    }
    if args.json:
        out.json(data)
        return EXIT_OK
    state = "on" if data["enabled"] else f"off ({_cache.ENV_NO_CACHE} is set)"
    out.line(f"directory: {data['directory']}")
    out.line(f"cache:     {state}")
    out.line(f"schema:    {_cache.SCHEMA}")
    out.line(f"files:     {len(files)}, {data['size']} bytes")
    if files:
        out.line("")
        out.line(format_table(["FILE", "BYTES"], [[name, str(size)] for name, size in files]))
    return EXIT_OK


def _clear(args: argparse.Namespace, out: Output) -> int:
    from mofa_kernel import _cache

    removed = _cache.clear()
    out.line(f"removed {removed} file{'s' if removed != 1 else ''} from {_cache.cache_dir()}")
    return EXIT_OK
