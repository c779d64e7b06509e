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

    from mofa_kernel._discovery import SurveyEntry

__all__ = [
    "ROW_KEYS",
    "cold_listing",
    "entry_row",
    "fit_table",
    "listing_words",
    "print_rows",
    "remember",
    "replay",
    "terminal_width",
]

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


def print_rows(
    rows: Sequence[Mapping[str, Any]], *, as_json: bool, out: Output, wide: bool = False
) -> None:
    """Print the listing as JSON or as a table, each row with its cached metadata if any.

    The table has ID, TYPE, VERSION, STATUS and ABOUT (the description, or
    why the plugin is not usable), shortened to the terminal's width, and
    ISOLATION after STATUS when some plugin runs in a worker process; ``wide``
    prints every column in full, ISOLATION always.
    """
    from mofa_kernel._cache import lookup_metadata

    metadata = lookup_metadata(rows)
    if as_json:
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
    if wide:
        headers = ["ID", "TYPE", "DISTRIBUTION", "VERSION", "ENABLED", "ISOLATION", "STATUS",
                   "ENTRY POINT", "PATH", "ABOUT"]  # fmt: skip
        table = [
            [
                row["id"],
                _type_word(found),
                row["distribution"] or "-",
                row["distribution_version"] or "-",
                "yes" if row["enabled"] else "no",
                row["isolation"],
                row["status"],
                row["entry_point"],
                row["path"] or "-",
                _about(row, found),
            ]
            for row, found in zip(rows, metadata, strict=True)
        ]
        out.line(format_table(headers, table))
        return
    isolated = any(row["isolation"] != "inline" for row in rows)
    headers = ["ID", "TYPE", "VERSION", "STATUS", *(["ISOLATION"] if isolated else []), "ABOUT"]
    table = [
        [
            row["id"],
            _type_word(found),
            row["distribution_version"] or "-",
            row["status"],
            *([row["isolation"]] if isolated else []),
            _about(row, found),
        ]
        for row, found in zip(rows, metadata, strict=True)
    ]
    out.line(fit_table(headers, table, terminal_width()))


def _type_word(metadata: object) -> str:
    """The plugin type of cached serde metadata (``Tool``, ``Custom(x)``), or ``-``."""
    kind = metadata.get("plugin_type") if isinstance(metadata, dict) else None
    if isinstance(kind, str):
        return kind
    if isinstance(kind, dict) and len(kind) == 1:
        ((variant, value),) = kind.items()
        return f"{variant}({value})"
    return "-"


def _about(row: Mapping[str, Any], metadata: object) -> str:
    """Why a plugin is not usable, else its description (``-`` when unknown)."""
    if row["status"] in ("failed", "disabled") and row["reason"]:
        return str(row["reason"])
    description = metadata.get("description") if isinstance(metadata, dict) else None
    return " ".join(description.split()) if isinstance(description, str) and description else "-"


def terminal_width() -> int:
    """The width tables must fit: ``$COLUMNS``, else the terminal's, else 100."""
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def fit_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str:
    """:func:`format_table` shortened to ``width`` columns: the last column gives way first,
    then the first; every line is at most ``width`` long."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for index, floor in ((len(widths) - 1, 16), (0, 12)):
        if excess > 0:
            cut = min(excess, max(widths[index] - max(floor, len(headers[index])), 0))
            widths[index] -= cut
            excess -= cut
    shortened = [[_shorten(cell, w) for cell, w in zip(row, widths, strict=True)] for row in rows]
    return "\n".join(
        _shorten(line, width) for line in format_table(headers, shortened).splitlines()
    )


def remember(
    config: str | None,
    inputs: str | None,
    fingerprint: str | None,
    rows: Iterable[Mapping[str, Any]],
    warnings: Sequence[str],
) -> None:
    """Store ``rows`` for :func:`replay`, if the inputs did not change while they were made.

    ``inputs`` is :func:`~mofa_kernel._cache.listing_inputs` taken before the
    configuration was read (``None`` when the cache is off); ``warnings`` are
    printed again on stderr when the listing is replayed.
    """
    from mofa_kernel import _cache

    if inputs is None or _cache.listing_inputs(config) != inputs:
        return
    listing = {"rows": [dict(row) for row in rows], "problems": list(warnings)}
    _cache.store_listing(GROUP, fingerprint, inputs, listing)


def listing_words(argv: Sequence[str]) -> tuple[str | None, bool, bool] | None:
    """``(config, as_json, wide)`` for exactly ``[--config FILE] plugins list [--json|--wide]``,
    or ``None``."""
    config: str | None = None
    rest = list(argv)
    if len(rest) >= 2 and rest[0] == "--config":
        config, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--config="):
        config, rest = rest[0].partition("=")[2], rest[1:]
    if config is not None and (not config or config.startswith("-")):
        return None
    if rest[:2] != ["plugins", "list"] or len(rest) > 3:
        return None
    option = rest[2] if len(rest) == 3 else None
    if option not in (None, "--json", "--wide", "-v"):
        return None
    return config, option == "--json", option in ("--wide", "-v")


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
    words = listing_words(argv)
    if words is None:
        return None
    from mofa_kernel import _cache

    config, as_json, wide = words
    probe = _cache.probe(GROUP)
    if probe is None:
        return None
    listing = probe.load_listing(_cache.listing_inputs(config))
    if listing is None or not _valid_listing(listing):
        return None
    for problem in listing["problems"]:
        out.error(f"warning: {problem}")
    print_rows(listing["rows"], as_json=as_json, out=out, wide=wide)
    return EXIT_OK


def _plain_inputs(config: str | None) -> bool:
    """Whether the listing's only inputs are the installed distributions: no configuration
    file and no ``MOFA_*`` variable that excludes plugins (``MOFA_NO_CACHE`` and
    ``MOFA_CACHE_DIR`` are fine)."""
    import os

    if config is not None or os.environ.get("MOFA_CONFIG") or os.path.isfile("mofa.toml"):
        return False
    return not any(name in os.environ for name in ("MOFA_PLUGINS", "MOFA_DISABLE_PLUGIN_AUTOLOAD"))


def _scanned_rows(data: Any) -> tuple[list[list[Any]], list[str], list[Any]]:
    """The rows, problems and refusals of a stored scan; ``TypeError`` or ``ValueError``
    for damaged data (see ``_discovery._decode_scan``, which checks the same)."""
    rows, problems, refusals = data["sources"], data["problems"], data["refusals"]
    if not (isinstance(rows, list) and isinstance(problems, list) and isinstance(refusals, list)):
        raise TypeError("lists expected")
    if len(refusals) != len(rows):
        raise ValueError("one refusal per source expected")
    for row in rows:
        if not (isinstance(row, list) and len(row) == 7):
            raise ValueError("seven fields per source expected")
        if not all(isinstance(v, str) for v in row[:2]) or not all(
            v is None or isinstance(v, str) for v in row[2:]
        ):
            raise TypeError("strings expected")
    if not all(isinstance(p, str) for p in problems) or not all(
        r is None or isinstance(r, str) for r in refusals
    ):
        raise TypeError("strings expected")
    return rows, problems, refusals


def _invalid_id(row: Sequence[Any]) -> str | None:
    """Why a scanned row's plugin id is refused, as ``_discovery.survey`` says it, or ``None``.
    A non-empty id of printable ASCII without a space is always valid: only other ids are
    checked by the rule itself (``mofa_kernel._ids``, which imports more)."""
    pid = row[0]
    if pid and pid.isascii() and pid.isprintable() and " " not in pid:
        return None
    from mofa_kernel._errors import PluginLoadError
    from mofa_kernel._ids import check_plugin_id
    from mofa_kernel._scanner import describe

    try:
        check_plugin_id(pid, origin=f"declared by {describe(row[2], row[3], row[1])}")
    except PluginLoadError as exc:
        return f"{exc}; refused"
    return None


def cold_listing(argv: Sequence[str], out: Output) -> int | None:
    """Print ``plugins list`` for ``argv`` from a scan by :mod:`mofa_kernel._scanner` (or the
    cached scan), without argparse, attrs, packaging or ``importlib.metadata``; store the
    scan and the listing as the full command does. ``None`` when ``argv`` is not a plain
    ``plugins list`` or the listing has other inputs (a configuration file, ``MOFA_PLUGINS``,
    ``MOFA_DISABLE_PLUGIN_AUTOLOAD``): the full command handles those.

    The verdicts are those of ``_discovery.survey`` with no exclusion rule: an invalid
    plugin id fails, then every claimant of a duplicate id, then a plugin the installed
    mofa-kernel refuses.
    """
    words = listing_words(argv)
    if words is None or not _plain_inputs(words[0]):
        return None
    from mofa_kernel import _cache
    from mofa_kernel._scanner import duplicate_line, scan_folders

    config, as_json, wide = words
    inputs = _cache.listing_inputs(config) if _cache.enabled() else None
    probe = _cache.probe(GROUP)
    hit = probe.load(_scanned_rows) if probe is not None else None
    fingerprint: str | None = None
    scanned: list[list[Any]]
    if hit is not None:
        (scanned, problems, refusals), fingerprint = hit  # type: ignore[misc]
    else:
        scan = scan_folders(GROUP)
        if scan is None:
            return None
        scanned, problems, refusals = scan.rows, scan.problems, scan.refusals()
        if probe is not None:
            stored = {"sources": scanned, "problems": problems, "refusals": refusals}
            fingerprint = probe.store(stored, scan.watch)
    invalid = [_invalid_id(row) for row in scanned]
    claims: dict[str, list[tuple[str | None, str | None, str]]] = {}
    for row, bad in zip(scanned, invalid, strict=True):
        if bad is None:
            claims.setdefault(row[0], []).append((row[2], row[3], row[1]))
    rows = []
    for row, refusal, bad in zip(scanned, refusals, invalid, strict=True):
        pid = row[0]
        if bad is not None:
            status, reason = "failed", bad
        elif len(claims[pid]) > 1:
            status, reason = "failed", duplicate_line(pid, claims[pid])
        elif refusal is not None:
            status, reason = "failed", refusal
        else:
            status, reason = "discovered", None
        rows.append(
            {
                "id": pid,
                "distribution": row[2],
                "distribution_version": row[3],
                "entry_point": row[1],
                "enabled": True,
                "status": status,
                "reason": reason,
                "isolation": "inline",  # a plain listing reads no configuration
                "path": row[4],
                "requires_kernel": row[5],
                "metadata": None,
                "metadata_dir": row[6],
            }
        )
    rows.sort(key=lambda r: (r["id"], r["distribution"] or ""))
    for problem in problems:
        out.error(f"warning: {problem}")
    remember(config, inputs, fingerprint, rows, list(problems))
    print_rows(rows, as_json=as_json, out=out, wide=wide)
    return EXIT_OK
