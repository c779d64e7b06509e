"""Finding installed plugins: entry points of group ``mofa.plugins``, read without importing them.

:func:`scan` lists what the installed distributions declare; :func:`survey`
adds the verdicts that need no import (excluded by configuration, duplicate
id, incompatible mofa-kernel requirement); :func:`load_plugin_object` is the
one place that imports a plugin's code and turns it into a plugin object.

A scan is kept in the on-disk cache (:mod:`mofa_kernel._cache`) and reused
while the installation is unchanged; ``importlib.metadata`` itself is
imported only when a scan really runs. The values it works on
(:class:`~mofa_kernel._source.PluginSource`, the exclusion rule) are in
:mod:`mofa_kernel._source`; what one distribution's metadata says is read by
:mod:`mofa_kernel._distributions`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import attrs

if TYPE_CHECKING:
    import importlib.metadata

from ._distributions import (
    KERNEL_DISTRIBUTION,
    kernel_requirement_error,
    kernel_specifier,
    metadata_field,
    metadata_folder,
    name_from_folder,
    plugin_path,
)
from ._errors import PluginLoadError
from ._hookspecs import PROJECT_NAME
from ._plugin import AgentPlugin
from ._source import (
    PLUGIN_GROUP,
    ExclusionRule,
    PluginSource,
    entry_point_target,
    normalize_name,
)

# PLUGIN_GROUP, ExclusionRule, PluginSource and normalize_name live in _source; they are
# named here too for the modules that import them from discovery.
__all__ = [
    "PLUGIN_GROUP",
    "ExclusionRule",
    "PluginSource",
    "ScanResult",
    "Survey",
    "SurveyEntry",
    "SurveyStatus",
    "duplicate_message",
    "find_duplicates",
    "load_plugin_object",
    "normalize_name",
    "scan",
    "scan_with_problems",
    "survey",
]

_HOOKIMPL_MARK: Final = f"{PROJECT_NAME}_impl"

logger = logging.getLogger("mofa_kernel")

#: What discovery decided about a plugin without importing it (see :class:`SurveyEntry`).
SurveyStatus = Literal["discovered", "disabled", "failed"]


@attrs.frozen
class ScanResult:
    """What :func:`scan_with_problems` found.

    ``problems`` has one line per distribution whose metadata could not be read.
    ``refusals`` says, per source, why the installed mofa-kernel refuses it
    (``None``: accepted), as :func:`kernel_requirement_error` would.
    ``fingerprint`` names the state of the installation the scan describes
    when the cache vouches for it (``None`` otherwise).
    """

    sources: tuple[PluginSource, ...]
    problems: tuple[str, ...] = ()
    refusals: tuple[str | None, ...] | None = attrs.field(default=None, eq=False)
    fingerprint: str | None = attrs.field(default=None, eq=False)


def scan(group: str = PLUGIN_GROUP) -> list[PluginSource]:
    """Every entry point of ``group`` in the installed distributions, without importing any.

    A distribution whose metadata cannot be read is logged (logger
    ``mofa_kernel``) and skipped; use :func:`scan_with_problems` to get those
    lines instead.
    """
    result = scan_with_problems(group)
    for problem in result.problems:
        logger.warning("%s", problem)
    return list(result.sources)


def scan_with_problems(group: str = PLUGIN_GROUP) -> ScanResult:
    """Like :func:`scan`, returning the unreadable distributions as one message each.

    Distributions are read in ``sys.path`` order; one shadowed by an earlier
    distribution of the same name is ignored, as the import system would.
    The result comes from the cache when the installation has not changed
    since it was stored (``MOFA_NO_CACHE=1`` always scans).
    """
    from . import _cache

    probe = _cache.probe(group)
    if probe is not None:
        hit = probe.load(functools.partial(_decode_scan, group=group))
        if hit is not None:
            cached, fingerprint = hit
            return attrs.evolve(cast("ScanResult", cached), fingerprint=fingerprint)
    result, watch = _scan_distributions(group)
    if probe is not None:
        stored = probe.store(_encode_scan(result), watch, value=result)
        if stored is not None:
            result = attrs.evolve(result, fingerprint=stored)
    return result


def _scan_distributions(group: str) -> tuple[ScanResult, list[str]]:
    """Read every installed distribution's entry points; also return the metadata folders
    the result depends on (the cache watches them)."""
    sources: list[PluginSource] = []
    problems: list[str] = []
    watch: list[str] = []
    seen: set[str] = set()
    kernel_version: str | None = None
    for dist, text in _distributions_and_entry_points(group):
        if isinstance(dist, str):  # declares no such entry point: only its name counts
            seen.add(dist)
            continue
        folder = metadata_folder(dist)
        key = name_from_folder(folder)
        if key is None:
            name = metadata_field(dist, "Name")
            key = normalize_name(name) if name is not None else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        if key == KERNEL_DISTRIBUTION:
            kernel_version = metadata_field(dist, "Version")
            if folder is not None:
                watch.append(folder)
        if text is None:
            text = dist.read_text("entry_points.txt")
        if not text or group not in text:
            continue  # the common case, decided without parsing anything
        if folder is not None:
            watch.append(folder)
        name = metadata_field(dist, "Name")
        try:
            entry_points = [ep for ep in dist.entry_points if ep.group == group]
        except Exception as exc:  # noqa: BLE001 - any malformed entry_points.txt is reported
            label = name or f"an unnamed distribution in {dist.locate_file('')}"
            problems.append(f"{label}: unreadable entry points ({_one_line(exc)}); skipped")
            continue
        if not entry_points:
            continue
        if name is None:
            where = dist.locate_file("")
            problems.append(
                f"a distribution in {where} declares {group} entry points but its metadata "
                f"has no Name; its plugins are ignored"
            )
            continue
        version = metadata_field(dist, "Version")
        requires_kernel = kernel_specifier(dist)
        for ep in entry_points:
            sources.append(
                PluginSource(
                    plugin_id=ep.name,
                    entry_point=ep.value,
                    distribution=name,
                    distribution_version=version,
                    path=plugin_path(dist, entry_point_target(ep.value)[0]),
                    requires_kernel=requires_kernel,
                    group=group,
                    metadata_dir=Path(folder) if folder is not None else None,
                )
            )
    refusals = tuple(
        None if kernel_version is None else kernel_requirement_error(source, kernel_version)
        for source in sources
    )
    return ScanResult(tuple(sources), tuple(problems), refusals), watch


# -- the cold scan's fast path (newcomer, issue 14: the first `plugins list` after an install) --


def _plain_path_search() -> bool:
    """Whether ``importlib.metadata`` would find distributions only in ``sys.path``'s folders:
    no other finder in ``sys.meta_path`` offers distributions, and no entry is a zip file."""
    import importlib.machinery

    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if finders != [importlib.machinery.PathFinder]:
        return False
    return not any(os.path.isfile(entry) for entry in sys.path if entry)


def _distributions_and_entry_points(
    group: str,
) -> Iterable[tuple[importlib.metadata.Distribution | str, str | None]]:
    """Every installed distribution, in the order ``importlib.metadata`` finds them, with the
    text of its ``entry_points.txt`` when already read (``None``: read it from the dist).
    A distribution whose entry points do not name ``group`` may come as its normalised
    name alone (as :func:`name_from_folder` reads it).

    The common case reads each metadata folder's ``entry_points.txt`` with one ``open`` and
    builds a ``Distribution`` only for the few that need one (those whose entry points name
    ``group``, the kernel's own, and the ones whose folder name says nothing);
    ``importlib.metadata`` builds one per distribution. Anything unusual takes
    ``importlib.metadata``'s own path.
    """
    import importlib.metadata

    if not _plain_path_search():
        for dist in importlib.metadata.distributions():
            yield dist, None
        return
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                names = [item.name for item in found]
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix.lower() not in ("dist-info", "egg-info"):
                continue
            project = stem.partition("-")[0]
            key = normalize_name(project) if project else None
            if key is None or key == KERNEL_DISTRIBUTION:
                yield importlib.metadata.PathDistribution(Path(entry, name)), None
                continue
            folder = os.path.join(entry, name) if entry else name
            try:
                with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except (OSError, UnicodeDecodeError):
                text = ""
            if group in text:
                yield importlib.metadata.PathDistribution(Path(entry, name)), text
            else:
                yield key, ""


def _encode_scan(result: ScanResult) -> dict[str, Any]:
    def text(path: Path | None) -> str | None:
        return None if path is None else str(path)

    return {
        "sources": [
            [
                s.plugin_id,
                s.entry_point,
                s.distribution,
                s.distribution_version,
                text(s.path),
                s.requires_kernel,
                text(s.metadata_dir),
            ]
            for s in result.sources
        ],
        "problems": list(result.problems),
        "refusals": list(result.refusals or [None] * len(result.sources)),
    }


def _text(value: object, *, optional: bool = True) -> Any:
    if isinstance(value, str) or (optional and value is None):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _decode_scan(data: Any, *, group: str) -> ScanResult:
    """The :class:`ScanResult` that :func:`_encode_scan` wrote; ``TypeError`` for damaged data."""
    sources = []
    for row in data["sources"]:
        pid, value, dist, version, path, requires, folder = row
        sources.append(
            PluginSource(
                plugin_id=_text(pid, optional=False),
                entry_point=_text(value, optional=False),
                distribution=_text(dist),
                distribution_version=_text(version),
                path=None if path is None else Path(_text(path)),
                requires_kernel=_text(requires),
                group=group,
                metadata_dir=None if folder is None else Path(_text(folder)),
            )
        )
    problems = tuple(_text(p, optional=False) for p in data["problems"])
    refusals = tuple(_text(r) for r in data["refusals"])
    if len(refusals) != len(sources):
        raise ValueError("one refusal per source expected")
    return ScanResult(tuple(sources), problems, refusals)


def find_duplicates(sources: Iterable[PluginSource]) -> dict[str, list[PluginSource]]:
    """The plugin ids claimed by more than one entry point, each with all its claimants."""
    by_id: dict[str, list[PluginSource]] = {}
    for source in sources:
        by_id.setdefault(source.plugin_id, []).append(source)
    return {plugin_id: claims for plugin_id, claims in by_id.items() if len(claims) > 1}


def duplicate_message(plugin_id: str, claims: Sequence[PluginSource]) -> str:
    """One line saying that ``plugin_id`` is claimed several times and loaded from none."""
    listed = ", ".join(source.describe() for source in claims)
    return (
        f"plugin id {plugin_id!r} is claimed by {len(claims)} entry points: {listed}; "
        f"none is loaded"
    )


@attrs.frozen
class SurveyEntry:
    """One discovered plugin with what is known of it without importing it.

    ``status`` is ``"discovered"`` (may be loaded), ``"disabled"`` (excluded
    by configuration or environment; ``reason`` says by what) or ``"failed"``
    (refused: duplicate id or incompatible mofa-kernel; ``reason`` says why).
    """

    source: PluginSource
    status: SurveyStatus
    reason: str | None = None

    @property
    def plugin_id(self) -> str:
        return self.source.plugin_id

    @property
    def enabled(self) -> bool:
        """``False`` when configuration or environment excludes the plugin."""
        return self.status != "disabled"


@attrs.frozen
class Survey:
    """Every discovered plugin's :class:`SurveyEntry` in scan order, and the unreadable
    distributions (``problems``, one line each).

    ``fingerprint`` is the scan's (see :class:`ScanResult`) when it was made from one.
    """

    entries: tuple[SurveyEntry, ...]
    problems: tuple[str, ...] = ()
    fingerprint: str | None = attrs.field(default=None, eq=False)

    def loadable(self) -> list[PluginSource]:
        """The sources that may be imported: neither excluded nor refused."""
        return [entry.source for entry in self.entries if entry.status == "discovered"]

    def find(self, plugin_id: str) -> list[SurveyEntry]:
        """Every entry claiming ``plugin_id`` (more than one for a duplicate id)."""
        return [entry for entry in self.entries if entry.plugin_id == plugin_id]


def survey(
    exclusion_reason: ExclusionRule | None = None,
    *,
    group: str = PLUGIN_GROUP,
    sources: Sequence[PluginSource] | None = None,
    kernel_version: str | None = None,
) -> Survey:
    """Judge every discovered plugin without importing it.

    In order: a plugin excluded by ``exclusion_reason`` is ``disabled``; among
    the rest, every claimant of a duplicate id is ``failed``, and so is one
    whose distribution's mofa-kernel requirement is not met. Before all that, a plugin
    whose entry-point name is no valid plugin id (:mod:`mofa_kernel._ids`) is ``failed``.
    ``sources`` defaults to a fresh :func:`scan_with_problems` of ``group``.
    """
    problems: tuple[str, ...] = ()
    refusals: tuple[str | None, ...] | None = None
    fingerprint: str | None = None
    if sources is None:
        scanned = scan_with_problems(group)
        sources, problems, fingerprint = scanned.sources, scanned.problems, scanned.fingerprint
        if kernel_version is None:
            refusals = scanned.refusals
    verdicts: dict[int, SurveyEntry] = {}
    candidates: list[PluginSource] = []
    for index, source in enumerate(sources):
        bad_id = _invalid_id(source)
        if bad_id is not None:
            verdicts[index] = SurveyEntry(source, "failed", bad_id)
            continue
        reason = exclusion_reason(source) if exclusion_reason is not None else None
        if reason is not None:
            verdicts[index] = SurveyEntry(source, "disabled", reason)
        else:
            candidates.append(source)
    duplicates = find_duplicates(candidates)
    for index, source in enumerate(sources):
        if index in verdicts:
            continue
        if source.plugin_id in duplicates:
            message = duplicate_message(source.plugin_id, duplicates[source.plugin_id])
            verdicts[index] = SurveyEntry(source, "failed", message)
            continue
        if refusals is not None:
            refusal = refusals[index]
        else:
            refusal = kernel_requirement_error(source, kernel_version)
        if refusal is not None:
            verdicts[index] = SurveyEntry(source, "failed", refusal)
        else:
            verdicts[index] = SurveyEntry(source, "discovered")
    return Survey(tuple(verdicts[i] for i in range(len(sources))), problems, fingerprint)


def _invalid_id(source: PluginSource) -> str | None:
    """One line when ``source``'s entry-point name is no valid plugin id (see ``_ids``)."""
    from ._ids import check_plugin_id

    try:
        check_plugin_id(source.plugin_id, origin=f"declared by {source.describe()}")
    except PluginLoadError as exc:
        return f"{exc}; refused"
    return None


def load_plugin_object(source: PluginSource) -> object:
    """Import ``source``'s entry point and return the plugin object it stands for.

    An :class:`AgentPlugin` subclass is instantiated; a zero-argument factory
    (a callable that is not a class) is called; a module or other object
    carrying ``@hookimpl`` functions is returned as it is (a class carrying
    them is instantiated). Anything going wrong raises
    :class:`PluginLoadError` with a one-line message (exception type,
    message, and the file and line that failed) and the original exception
    as ``__cause__``. An import still running after a few seconds is reported while it
    runs (:mod:`mofa_kernel._slow_import`).
    """
    import importlib.metadata

    from ._slow_import import ImportWatch, slow_import_threshold

    what = f"plugin {source.plugin_id!r} from {source.describe()}"
    try:
        with ImportWatch(what, threshold=slow_import_threshold()):
            named = importlib.metadata.EntryPoint(
                name=source.plugin_id, value=source.entry_point, group=source.group
            ).load()
    except (Exception, SystemExit) as exc:
        raise _load_error(source, "cannot import", exc) from exc
    try:
        return _plugin_object(named)
    except _NotAPlugin as exc:
        raise PluginLoadError(
            f"plugin {source.plugin_id!r} from {source.describe()}: {exc}",
            plugin_id=source.plugin_id,
            distribution=source.distribution,
            entry_point=source.entry_point,
        ) from None
    except (Exception, SystemExit) as exc:
        raise _load_error(source, "cannot build", exc) from exc


class _NotAPlugin(TypeError):
    """The entry point names something that is no kind of plugin."""


def _carries_hookimpls(obj: object) -> bool:
    """Whether ``obj`` has a ``@hookimpl`` member, found without running its properties."""
    namespaces: list[Mapping[str, object]]
    if inspect.ismodule(obj):
        namespaces = [vars(obj)]
    elif isinstance(obj, type):
        namespaces = [vars(cls) for cls in obj.__mro__]
    else:
        namespaces = [vars(cls) for cls in type(obj).__mro__]
        namespaces.append(getattr(obj, "__dict__", {}))
    for namespace in namespaces:
        for member in namespace.values():
            target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if callable(target) and getattr(target, _HOOKIMPL_MARK, None) is not None:
                return True
    return False


def _plugin_object(named: object) -> object:
    if isinstance(named, type):
        if issubclass(named, AgentPlugin):
            return named()
        if _carries_hookimpls(named):
            return named()
        raise _NotAPlugin(
            f"{named.__qualname__} is a class that neither derives from AgentPlugin "
            f"nor carries @hookimpl functions"
        )
    if isinstance(named, AgentPlugin) or _carries_hookimpls(named):
        return named
    if inspect.ismodule(named):
        raise _NotAPlugin(f"module {named.__name__} carries no @hookimpl functions")
    if callable(named):
        made = named()
        if inspect.isawaitable(made):
            if inspect.iscoroutine(made):
                made.close()
            raise _NotAPlugin("the factory is async; return the plugin from a plain function")
        if isinstance(made, AgentPlugin) or (
            not isinstance(made, type) and _carries_hookimpls(made)
        ):
            return made
        raise _NotAPlugin(
            f"the factory returned {type(made).__name__}, not an AgentPlugin "
            f"or an object carrying @hookimpl functions"
        )
    raise _NotAPlugin(
        f"{type(named).__name__} object is not a plugin: expected an AgentPlugin subclass, "
        f"a factory, or a module of @hookimpl functions"
    )


def _load_error(source: PluginSource, doing: str, exc: BaseException) -> PluginLoadError:
    where = _failure_location(exc)
    at = f" ({where})" if where else ""
    message = (
        f"{doing} plugin {source.plugin_id!r} from {source.describe()}: "
        f"{type(exc).__name__}: {_one_line(exc)}{at}"
    )
    return PluginLoadError(
        message,
        plugin_id=source.plugin_id,
        distribution=source.distribution,
        entry_point=source.entry_point,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.msg:
        return exc.msg
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) if lines else "(no message)"


@functools.cache
def _importlib_root() -> str:
    import importlib.metadata

    return os.path.dirname(os.path.dirname(importlib.metadata.__file__ or ""))


def _is_machinery(filename: str) -> bool:
    return (
        filename.startswith("<frozen")
        or filename == __file__
        or filename.startswith(_importlib_root() + os.sep)
    )


def _failure_location(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame that is the plugin's code, not the import machinery."""
    filename: str | None = None
    lineno: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename:
        filename, lineno = exc.filename, exc.lineno
    else:
        for frame, frame_lineno in traceback.walk_tb(exc.__traceback__):
            candidate = frame.f_code.co_filename
            if not _is_machinery(candidate):
                filename, lineno = candidate, frame_lineno
    if filename is None:
        return None
    return f"{_shorten(filename)}:{lineno}" if lineno else _shorten(filename)


def _shorten(filename: str) -> str:
    """The file relative to the ``sys.path`` entry it lies under, if any."""
    path = Path(filename)
    best: Path | None = None
    for entry in sys.path:
        if not entry:
            continue
        try:
            relative = path.relative_to(entry)
        except ValueError:
            continue
        if best is None or len(relative.parts) < len(best.parts):
            best = relative
    return best.as_posix() if best is not None else filename
