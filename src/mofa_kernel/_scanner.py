"""The installed distributions' plugin entry points, read straight from the metadata folders.

This is the scanner behind discovery (:mod:`mofa_kernel._discovery`) and
the first ``plugins list`` after an install (:mod:`mofa_kernel._cli._listing`).
It lists every ``*.dist-info`` and ``*.egg-info`` in ``sys.path``'s folders
with ``os.scandir``, in the order ``importlib.metadata`` finds them, opens
each one's ``entry_points.txt`` once and parses it only when it names the
group; the ``METADATA`` headers are read only for the distributions that
declare plugins (and the kernel's own). It imports neither
``importlib.metadata``, attrs nor packaging, so that a first listing costs a
fraction of what importing those costs.

:func:`scan_folders` returns ``None`` when it cannot vouch for the answer: a
distribution finder other than the standard path finder, or a zip file on
``sys.path``; discovery then reads the distributions through
``importlib.metadata``. An ``*.egg-info``'s file list and requirements
(``installed-files.txt``, ``requires.txt``) are read through
``importlib.metadata`` too: they are rare, and it knows their formats.

Each plugin comes as a row in the cache's encoding: ``[plugin id, entry
point, distribution, version, path, mofa-kernel specifier, metadata
folder]``.
"""

from __future__ import annotations

import os
import re
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the fast path
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Final

__all__ = [
    "KERNEL_DISTRIBUTION",
    "Row",
    "describe",
    "duplicate_line",
    "entry_point_target",
    "folder_key",
    "kernel_refusal",
    "normalize_name",
    "parse_entry_points",
    "read_headers",
    "requirement_specifier",
    "scan_folders",
    "specifier_text",
]

#: The name of the kernel's own distribution.
KERNEL_DISTRIBUTION: Final = "mofa-kernel"
#: One plugin: id, entry point, distribution, version, path, kernel specifier, metadata folder.
Row = list["str | None"]

_SEPARATORS: Final = re.compile(r"[-_.]+")
#: An entry point's value: ``module``, ``module:attr`` or either with ``[extras]``, read as
#: ``importlib.metadata.EntryPoint`` reads it.
_ENTRY_POINT: Final = re.compile(r"([\w.]+)\s*(?::\s*([\w.]+)\s*)?(?:\[.*\]\s*)?$")
_REQUIREMENT_NAME: Final = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: A specifier clause the fast path compares itself: a plain release, no wildcard.
_CLAUSE: Final = re.compile(r"\s*(==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)\s*")
_RELEASE: Final = re.compile(r"\d+(?:\.\d+)*")


class Unreadable(ValueError):
    """A metadata file that is not UTF-8 text or not in its format."""


def normalize_name(name: str) -> str:
    """A distribution name in its PEP 503 normal form (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return _SEPARATORS.sub("-", name).lower()


def folder_key(folder_name: str) -> str | None:
    """The normalised distribution name in a ``name-version.dist-info`` (or ``.egg-info``)
    folder's name, as ``importlib.metadata`` reads it to tell distributions apart."""
    stem, dot, suffix = folder_name.rpartition(".")
    if not dot or suffix.lower() not in ("dist-info", "egg-info"):
        return None
    name = stem.partition("-")[0]
    return normalize_name(name) if name else None


_TARGETS: dict[str, tuple[str, str | None]] = {}


def entry_point_target(value: str) -> tuple[str, str | None]:
    """The module and the dotted attribute (``None`` for a whole module) an entry point names.

    Read as ``importlib.metadata.EntryPoint`` reads it, as the import will be:
    spaces and extras (``pkg.mod:obj [extra]``) are dropped. A value that is
    no entry point at all comes back whole as the module, so that looking it
    up finds nothing rather than something else.
    """
    found = _TARGETS.get(value)
    if found is None:
        match = _ENTRY_POINT.match(value)
        found = (value, None) if match is None else (match.group(1), match.group(2) or None)
        if len(_TARGETS) > 1024:
            _TARGETS.clear()
        _TARGETS[value] = found
    return found


def parse_entry_points(text: str, group: str) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of ``group`` in an ``entry_points.txt``.

    Read as ``importlib.metadata`` reads the file: lines stripped, blank lines
    and ``#`` comments skipped, ``[section]`` headers, ``name = value`` split
    at the first ``=``. A line in any section without ``=`` makes the whole
    file unreadable (:class:`Unreadable`), as it does for ``importlib.metadata``.
    """
    found: list[tuple[str, str]] = []
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, equals, value = line.partition("=")
        if not equals:
            raise Unreadable("not enough values to unpack (expected 2, got 1)")
        if section == group:
            found.append((name.strip(), value.strip()))
    return found


def read_headers(folder: str) -> dict[str, list[str]] | None:
    """The header fields of a metadata folder's ``METADATA`` (else ``PKG-INFO``), each name
    lowercased with its values in order; ``None`` when there is neither file.

    Continuation lines are joined as ``email`` joins them; the headers end at
    the first blank line or the first line that is no header. Not UTF-8:
    :class:`Unreadable`.
    """
    data: bytes | None = None
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, name), "rb") as file:
                data = file.read()
            break
        except OSError:
            continue
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"{name} is not UTF-8 text ({exc.reason})") from None
    headers: dict[str, list[str]] = {}
    values: list[str] | None = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t":
            if values is not None:
                values[-1] += "\n" + line
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip() or key != key.rstrip():
            break
        values = headers.setdefault(key.lower(), [])
        values.append(value.lstrip(" \t"))
    for key, found in headers.items():
        headers[key] = [_redent(value) for value in found]
    return headers


def _redent(value: str) -> str:
    if "\n" not in value:
        return value
    import textwrap

    return textwrap.dedent(" " * 8 + value)


def specifier_text(rest: str) -> str | None:
    """The specifier after a requirement's name (``">=0.1"``) as packaging spells it, or
    ``None`` when it has extras, a URL or a marker (see ``_distributions.kernel_specifier``)."""
    text = rest.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if any(mark in text for mark in ";[@("):
        return None
    if not text:
        return ""
    matches = [_CLAUSE.fullmatch(clause) for clause in text.split(",")]
    if all(matches):
        # What str(SpecifierSet(text)) gives, without importing packaging.
        return ",".join(sorted("".join(m.groups()) for m in matches if m is not None))
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return str(SpecifierSet(text))
    except InvalidSpecifier:
        return None


def _release(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _simply_satisfied(specifier: str, version: str) -> bool | None:
    """Whether plain release ``version`` meets ``specifier``, when every clause is a plain
    comparison with a plain release; ``None`` when packaging must decide."""
    if not _RELEASE.fullmatch(version):
        return None
    have = _release(version)
    for clause in specifier.split(",") if specifier else ():
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            return None
        operator, wanted = match.group(1), _release(match.group(2))
        ok = {
            "==": have == wanted,
            "!=": have != wanted,
            "<=": have <= wanted,
            ">=": have >= wanted,
            "<": have < wanted,
            ">": have > wanted,
        }[operator]
        if not ok:
            return False
    return True


def kernel_refusal(
    plugin_id: str, distribution: str | None, requires_kernel: str | None, kernel_version: str
) -> str | None:
    """Why the installed mofa-kernel ``kernel_version`` refuses a plugin whose distribution
    requires ``requires_kernel``, or ``None`` when it accepts it."""
    if requires_kernel is None:
        return None
    who = f"plugin {plugin_id!r} from {distribution or 'an unnamed distribution'}"
    satisfied = _simply_satisfied(requires_kernel, kernel_version)
    if satisfied is None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            specifier = SpecifierSet(requires_kernel)
        except InvalidSpecifier:
            return (
                f"{who} declares an unreadable requirement on mofa-kernel "
                f"({requires_kernel!r}); refused"
            )
        try:
            satisfied = specifier.contains(Version(kernel_version), prereleases=True)
        except InvalidVersion:
            return None
    if satisfied:
        return None
    return (
        f"{who} requires mofa-kernel{requires_kernel}, "
        f"but mofa-kernel {kernel_version} is installed; refused"
    )


def describe(distribution: str | None, version: str | None, entry_point: str) -> str:
    """``"alpha-dist 1.0 (alpha:Plugin)"``: which distribution and entry point, for messages."""
    dist = distribution or "an unnamed distribution"
    if version:
        dist = f"{dist} {version}"
    return f"{dist} ({entry_point})"


def duplicate_line(plugin_id: str, claims: Sequence[tuple[str | None, str | None, str]]) -> str:
    """One line saying that ``plugin_id`` is claimed several times (each claim as
    ``(distribution, version, entry point)``) and loaded from none."""
    listed = ", ".join(describe(*claim) for claim in claims)
    return (
        f"plugin id {plugin_id!r} is claimed by {len(claims)} entry points: {listed}; "
        f"none is loaded"
    )


def _plain_path_search() -> bool:
    """Whether ``importlib.metadata`` would find distributions only in ``sys.path``'s folders:
    no other finder in ``sys.meta_path`` offers distributions, and no entry is a zip file
    or an ``.egg`` (whose ``EGG-INFO`` the scanner does not read)."""
    import importlib.machinery

    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if finders != [importlib.machinery.PathFinder]:
        return False
    return not any(
        entry.lower().endswith(".egg") or os.path.isfile(entry) for entry in sys.path if entry
    )


def _first(headers: dict[str, list[str]] | None, field: str) -> str | None:
    values = headers.get(field.lower()) if headers is not None else None
    return values[0] if values else None


class Scan:
    """What :func:`scan_folders` found: plugin rows, unreadable distributions (one line
    each), the metadata folders the result depends on, and the installed kernel's version."""

    __slots__ = ("kernel_version", "problems", "rows", "watch")

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.watch: list[str] = []
        self.kernel_version: str | None = None

    def refusals(self) -> list[str | None]:
        """Per row, why the installed mofa-kernel refuses it (``None``: accepted; every row
        is accepted when no mofa-kernel distribution is installed)."""
        version = self.kernel_version
        if version is None:
            return [None] * len(self.rows)
        return [kernel_refusal(r[0] or "", r[2], r[5], version) for r in self.rows]


def _metadata_folders() -> Iterable[tuple[str, str, str]]:
    """``(sys.path entry, folder name, folder path)`` of every metadata folder, in the order
    ``importlib.metadata`` finds them."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        prefix = entry + os.sep if entry and not entry.endswith(os.sep) else entry
        for name in names:
            low = name.lower()
            if low.endswith(".dist-info") or low.endswith(".egg-info"):
                yield entry, name, prefix + name


def _read_bytes(path: str) -> bytes | None:
    """The bytes of file ``path``, or ``None`` when it cannot be read (one ``open``, no
    buffered file object: most of a scan is these calls)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:  # a large file: the rest too
            chunks = [data]
            while chunk := os.read(fd, _CHUNK):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


_CHUNK: Final = 1 << 16


def _folder_key(name: str) -> str | None:
    """:func:`folder_key` of a name known to end in ``.dist-info`` or ``.egg-info``, faster
    in the usual case (no run of separators)."""
    project = name.rpartition(".")[0].partition("-")[0]
    if not project:
        return None
    key = project.lower().replace("_", "-").replace(".", "-")
    return key if "--" not in key else normalize_name(project)


def scan_folders(group: str) -> Scan | None:
    """Every entry point of ``group`` in the distributions on ``sys.path``, or ``None`` when
    only ``importlib.metadata`` can tell (see the module's docstring).

    A distribution shadowed by an earlier one of the same name is ignored,
    as the import system would.
    """
    if not _plain_path_search():
        return None
    scan = Scan()
    seen: set[str] = set()
    needle = group.encode()
    for entry, name, folder in _metadata_folders():
        key = _folder_key(name)
        headers: dict[str, list[str]] | None = None
        if key is None or key == KERNEL_DISTRIBUTION:
            try:
                headers = read_headers(folder)
            except Unreadable:
                headers = None
            if key is None:
                named = _first(headers, "Name")
                key = normalize_name(named) if named is not None else None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        if key == KERNEL_DISTRIBUTION:
            scan.kernel_version = _first(headers, "Version")
            scan.watch.append(folder)
        data = _read_bytes(folder + os.sep + "entry_points.txt")
        if data is None or needle not in data:
            continue  # the common case, decided without decoding or parsing anything
        scan.watch.append(folder)
        _read_plugins(scan, entry, name, data, group)
    return scan


def _read_plugins(scan: Scan, entry: str, name: str, data: bytes, group: str) -> None:
    """Add the plugins of the metadata folder ``name`` in ``entry`` (whose
    ``entry_points.txt`` is ``data``) to ``scan``, or one problem line."""
    folder = os.path.join(entry, name)
    try:
        headers = read_headers(folder)
    except Unreadable as exc:
        scan.problems.append(f"a distribution in {_clean(folder)}: {exc}; skipped")
        return
    dist = _first(headers, "Name")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        label = dist or f"an unnamed distribution in {_site(entry)}"
        scan.problems.append(
            f"{label}: unreadable entry points (not UTF-8 text: {exc.reason}); skipped"
        )
        return
    try:
        entry_points = parse_entry_points(text, group)
    except Unreadable as exc:
        label = dist or f"an unnamed distribution in {_site(entry)}"
        scan.problems.append(f"{label}: unreadable entry points ({exc}); skipped")
        return
    if not entry_points:
        return
    if dist is None:
        scan.problems.append(
            f"a distribution in {_site(entry)} declares {group} entry points but its metadata "
            f"has no Name; its plugins are ignored"
        )
        return
    version = _first(headers, "Version")
    egg = name.lower().endswith(".egg-info")
    requires = _kernel_specifier(headers, folder if egg else None)
    for plugin_id, value in entry_points:
        path = _plugin_path(entry, name, entry_point_target(value)[0], egg)
        scan.rows.append([plugin_id, value, dist, version, path, requires, _clean(folder)])


def _clean(path: str) -> str:
    """``path`` as ``str(pathlib.Path(path))`` spells it."""
    if not path:
        return "."
    head = "//" if path.startswith("//") and not path.startswith("///") else ""
    parts = [part for part in path.split(os.sep) if part and part != "."]
    if path.startswith(os.sep):
        return (head or os.sep) + os.sep.join(parts)
    return os.sep.join(parts) or "."


def _site(entry: str) -> str:
    """Where ``importlib.metadata`` locates a distribution of ``sys.path`` entry ``entry``."""
    return _clean(entry)


def _kernel_specifier(headers: dict[str, list[str]] | None, egg_folder: str | None) -> str | None:
    lines = (headers or {}).get("requires-dist") or []
    if not lines and egg_folder is not None:
        # requires.txt's sections and markers: importlib.metadata reads them (egg-info only).
        import importlib.metadata
        from pathlib import Path

        lines = importlib.metadata.PathDistribution(Path(egg_folder)).requires or []
    return requirement_specifier(lines)


def requirement_specifier(lines: Iterable[str]) -> str | None:
    """The version specifier on mofa-kernel among requirement ``lines`` (``Requires-Dist``),
    as ``PluginSource.requires_kernel`` holds it; a requirement whose marker needs an extra
    does not count."""
    for line in lines:
        match = _REQUIREMENT_NAME.match(line)
        if match is None or normalize_name(match.group(1)) != KERNEL_DISTRIBUTION:
            continue
        plain = specifier_text(line[match.end() :])
        if plain is not None:
            return plain
        found = _marked_specifier(line, match.end())
        if found is not None:
            return found
    return None


def _marked_specifier(line: str, name_end: int) -> str | None:
    """The specifier of a requirement with extras, URL or marker, read by packaging;
    ``None`` when its marker does not apply (no extra asked for)."""
    from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        # Kept as written, so that kernel_refusal reports it.
        return line[name_end:].strip()
    if requirement.marker is not None:
        try:
            applies = requirement.marker.evaluate({"extra": ""})
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            applies = True
        if not applies:
            return None
    return str(requirement.specifier)


def _plugin_path(entry: str, name: str, module: str, egg: bool) -> str:
    """Where ``module`` is: its file in the distribution's record, else the editable
    project, else the ``sys.path`` entry (see ``PluginSource.path``)."""
    parts = module.split(".")
    wanted = {"/".join(parts) + ".py", "/".join([*parts, "__init__.py"])}
    folder = os.path.join(entry, name)
    if egg:
        import importlib.metadata
        from pathlib import Path

        dist = importlib.metadata.PathDistribution(Path(folder))
        for file in dist.files or ():
            if file.as_posix() in wanted:
                return str(Path(str(dist.locate_file(file))))
    else:
        for recorded in _record_paths(folder):
            if recorded in wanted:
                return _clean(os.path.join(entry, recorded))
    editable = editable_project(folder)
    return editable if editable is not None else _site(entry)


def _record_paths(folder: str) -> list[str]:
    """The paths in a ``*.dist-info``'s ``RECORD`` (empty when it has none)."""
    try:
        with open(os.path.join(folder, "RECORD"), encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return []
    if '"' not in text:
        return [line.partition(",")[0] for line in text.splitlines() if line]
    import csv

    return [row[0] for row in csv.reader(text.splitlines()) if row]


def editable_project(folder: str) -> str | None:
    """The project folder of an editable install whose metadata folder is ``folder``
    (from its ``direct_url.json``), else ``None``."""
    try:
        with open(os.path.join(folder, "direct_url.json"), encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return None
    path = editable_path(text)
    return None if path is None else _clean(path)


def editable_path(direct_url: str) -> str | None:
    """The project folder that a ``direct_url.json`` text names for an editable install."""
    if not direct_url:
        return None
    import json
    from urllib.parse import unquote, urlparse

    try:
        data = json.loads(direct_url)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    dir_info = data.get("dir_info")
    url = data.get("url")
    if not (isinstance(dir_info, dict) and dir_info.get("editable") and isinstance(url, str)):
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return unquote(parsed.path)
