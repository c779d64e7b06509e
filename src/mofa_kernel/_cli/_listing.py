"""The rows of ``plugins list``, and the fast path that replays them from the cache.

The rows depend only on the installed distributions, the configuration and
the environment. Once computed for an installation the cache vouches for,
they are stored beside its scan, keyed by every other input
(:func:`mofa_kernel._cache.listing_inputs`); the same command run again on
the same installation prints them without argparse, attrs or
``importlib.metadata`` being imported. Each row's ``metadata`` is looked up
afresh every time (:func:`mofa_kernel._cache.lookup_metadata`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._output import EXIT_OK, Output, format_table

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from typing import Any, Final

    from mofa_kernel._discovery import Survey, SurveyEntry

__all__ = ["ROW_KEYS", "entry_row", "print_rows", "remember", "replay"]

#: The entry-point group listed; the same as ``mofa_kernel._discovery.PLUGIN_GROUP``, which
#: this module does not import (it would pull in attrs).
GROUP: Final = "mofa.plugins"
#: The keys of one row of ``plugins list --json``, in order.
ROW_KEYS: Final = (
    "id",
    "distribution",
    "distribution_version",
    "entry_point",
    "enabled",
    "isolation",
    "status",
    "reason",
    "path",
    "requires_kernel",
    "metadata",
)
#: Kept in a stored row for the metadata look-up, never printed.
_PRIVATE: Final = ("metadata_dir",)


def entry_row(entry: SurveyEntry, isolation: str = "inline") -> dict[str, Any]:
    """One row of the listing (``metadata`` still ``None``), with the private keys."""
    source = entry.source
    return {
        "id": source.plugin_id,
        "distribution": source.distribution,
        "distribution_version": source.distribution_version,
        "entry_point": source.entry_point,
        "enabled": entry.enabled,
        "isolation": isolation,
        "status": entry.status,
        "reason": entry.reason,
        "path": str(source.path) if source.path is not None else None,
        "requires_kernel": source.requires_kernel,
        "metadata": None,
        "metadata_dir": str(source.metadata_dir) if source.metadata_dir is not None else None,
    }


def print_rows(rows: Sequence[Mapping[str, Any]], *, as_json: bool, out: Output) -> None:
    """Print the listing as JSON or as a table, each row with its cached metadata if any."""
    from mofa_kernel._cache import lookup_metadata

    if as_json:
        metadata = lookup_metadata(rows)
        out.json(
            [
                {key: (found if key == "metadata" else row[key]) for key in ROW_KEYS}
                for row, found in zip(rows, metadata, strict=True)
            ]
        )
        return
    if not rows:
        out.line("No plugins installed (entry-point group mofa.plugins).")
        return
    table = [
        [
            row["id"],
            row["distribution"] or "-",
            row["distribution_version"] or "-",
            "yes" if row["enabled"] else "no",
            row["status"],
            row["entry_point"],
            row["path"] or "-",
            row["reason"] or "",
        ]
        for row in rows
    ]
    headers = ["ID", "DISTRIBUTION", "VERSION", "ENABLED", "STATUS", "ENTRY POINT", "PATH", "NOTE"]
    out.line(format_table(headers, table))


def remember(
    config: str | None, inputs: str | None, survey: Survey, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Store ``rows`` for :func:`replay`, if the inputs did not change while they were made.

    ``inputs`` is :func:`~mofa_kernel._cache.listing_inputs` taken before the
    configuration was read (``None`` when the cache is off).
    """
    from mofa_kernel import _cache

    if inputs is None or _cache.listing_inputs(config) != inputs:
        return
    listing = {"rows": [dict(row) for row in rows], "problems": list(survey.problems)}
    _cache.store_listing(GROUP, survey.fingerprint, inputs, listing)


def _words(argv: Sequence[str]) -> tuple[str | None, bool] | None:
    """``(config, as_json)`` for exactly ``[--config FILE] plugins list [--json]``, or ``None``."""
    config: str | None = None
    rest = list(argv)
    if len(rest) >= 2 and rest[0] == "--config":
        config, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--config="):
        config, rest = rest[0].partition("=")[2], rest[1:]
    if config is not None and (not config or config.startswith("-")):
        return None
    if rest == ["plugins", "list"]:
        return config, False
    if rest == ["plugins", "list", "--json"]:
        return config, True
    return None


def _valid_listing(listing: Mapping[str, Any]) -> bool:
    rows, problems = listing.get("rows"), listing.get("problems")
    if not (isinstance(rows, list) and isinstance(problems, list)):
        return False
    keys = {*ROW_KEYS, *_PRIVATE}
    return all(isinstance(row, dict) and set(row) == keys for row in rows) and all(
        isinstance(problem, str) for problem in problems
    )


def replay(argv: Sequence[str], out: Output) -> int | None:
    """Print a stored listing for ``argv`` and return the exit status, or ``None`` when
    ``argv`` is not a plain ``plugins list`` or nothing valid is stored."""
    words = _words(argv)
    if words is None:
        return None
    from mofa_kernel import _cache

    config, as_json = words
    probe = _cache.probe(GROUP)
    if probe is None:
        return None
    listing = probe.load_listing(_cache.listing_inputs(config))
    if listing is None or not _valid_listing(listing):
        return None
    for problem in listing["problems"]:
        out.error(f"warning: {problem}")
    print_rows(listing["rows"], as_json=as_json, out=out)
    return EXIT_OK
