"""What an installed distribution says about itself, read from its metadata without importing it.

Discovery (:mod:`mofa_kernel._discovery`) asks these for each distribution
that declares plugins: its metadata folder and name, its requirement on
mofa-kernel (and whether the installed mofa-kernel meets it), the file of a
plugin's module, and the project folder of an editable install. The trust
lock (:mod:`mofa_kernel._trust`) uses the last too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Final

from ._source import PluginSource, normalize_name

if TYPE_CHECKING:
    import importlib.metadata

__all__ = [
    "KERNEL_DISTRIBUTION",
    "editable_project",
    "installed_kernel_version",
    "kernel_requirement_error",
    "kernel_specifier",
    "metadata_field",
    "metadata_folder",
    "name_from_folder",
    "plugin_path",
]

#: The name of the kernel's own distribution.
KERNEL_DISTRIBUTION: Final = "mofa-kernel"
_REQUIREMENT_NAME: Final = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def metadata_folder(dist: importlib.metadata.Distribution) -> str | None:
    """The metadata folder of a distribution found on disk (``None`` inside a zip file)."""
    # PathDistribution keeps its folder in ``_path``; importlib.metadata offers no public way
    # to ask where a distribution's metadata is, and without it nothing is cached.
    folder = getattr(dist, "_path", None)
    return os.fspath(folder) if isinstance(folder, PurePath) else None


def name_from_folder(folder: str | None) -> str | None:
    """The normalised name in a ``name-version.dist-info`` (or ``.egg-info``) folder's name,
    as ``importlib.metadata`` reads it to tell distributions apart."""
    if folder is None:
        return None
    stem, dot, suffix = os.path.basename(folder).rpartition(".")
    if not dot or suffix.lower() not in ("dist-info", "egg-info"):
        return None
    name = stem.partition("-")[0]
    return normalize_name(name) if name else None


def metadata_field(dist: importlib.metadata.Distribution, field: str) -> str | None:
    """The first value of ``field`` in ``dist``'s metadata, or ``None``."""
    values = _parsed_metadata(dist).get_all(field)
    return str(values[0]) if values else None


#: ``dist.metadata`` parses the METADATA file at every access: parsed once per distribution
#: (a few kept, by identity; the distribution is kept alive with its entry).
_PARSED: dict[int, tuple[object, Any]] = {}


def _parsed_metadata(dist: importlib.metadata.Distribution) -> Any:
    found = _PARSED.get(id(dist))
    if found is None or found[0] is not dist:
        if len(_PARSED) > 64:
            _PARSED.clear()
        found = _PARSED[id(dist)] = (dist, dist.metadata)
    return found[1]


def _plain_specifier(rest: str) -> str | None:
    """The specifier of a requirement without extras, URL or marker (``">=0.1"`` after the
    name), as ``packaging`` would spell it; ``None`` for anything else. Spares importing
    ``packaging.requirements`` and its marker machinery for the usual case."""
    text = rest.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if any(mark in text for mark in ";[@("):
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return str(SpecifierSet(text))
    except InvalidSpecifier:
        return None


def kernel_specifier(dist: importlib.metadata.Distribution) -> str | None:
    """``dist``'s version specifier on mofa-kernel (see ``PluginSource.requires_kernel``)."""
    for line in _parsed_metadata(dist).get_all("Requires-Dist") or dist.requires or ():
        match = _REQUIREMENT_NAME.match(line)
        if match is None or normalize_name(match.group(1)) != KERNEL_DISTRIBUTION:
            continue
        plain = _plain_specifier(line[match.end() :])
        if plain is not None:
            return plain
        from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            # Kept as written, so that kernel_requirement_error reports it.
            return line[match.end() :].strip()
        if requirement.marker is not None:
            try:
                applies = requirement.marker.evaluate({"extra": ""})
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                applies = True
            if not applies:
                continue
        return str(requirement.specifier)
    return None


def plugin_path(dist: importlib.metadata.Distribution, module: str) -> Path | None:
    """Where ``module`` of ``dist`` is: its file, else the editable project, else the site."""
    parts = module.split(".")
    wanted = {"/".join(parts) + ".py", "/".join([*parts, "__init__.py"])}
    for file in dist.files or ():
        if file.as_posix() in wanted:
            return Path(str(dist.locate_file(file)))
    editable = editable_project(dist)
    if editable is not None:
        return editable
    return Path(str(dist.locate_file("")))


def editable_project(dist: importlib.metadata.Distribution) -> Path | None:
    """The project folder of an editable install of ``dist``, else ``None``."""
    import json
    from urllib.parse import unquote, urlparse

    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
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
    return Path(unquote(parsed.path))


def installed_kernel_version() -> str | None:
    """The installed mofa-kernel distribution's version, or ``None`` when it is not installed."""
    import importlib.metadata

    try:
        return importlib.metadata.version(KERNEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def kernel_requirement_error(source: PluginSource, kernel_version: str | None = None) -> str | None:
    """Why ``source`` cannot run on the installed mofa-kernel, or ``None`` when it can.

    ``kernel_version`` defaults to the installed mofa-kernel's version; when
    that is unknown (no distribution installed) nothing is refused.
    """
    if source.requires_kernel is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    version = kernel_version if kernel_version is not None else installed_kernel_version()
    if version is None:
        return None
    who = f"plugin {source.plugin_id!r} from {source.distribution or 'an unnamed distribution'}"
    try:
        specifier = SpecifierSet(source.requires_kernel)
    except InvalidSpecifier:
        return (
            f"{who} declares an unreadable requirement on mofa-kernel "
            f"({source.requires_kernel!r}); refused"
        )
    try:
        satisfied = specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return None
    if satisfied:
        return None
    return (
        f"{who} requires mofa-kernel{source.requires_kernel}, "
        f"but mofa-kernel {version} is installed; refused"
    )
