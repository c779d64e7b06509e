"""What an installed distribution says about itself, read from its metadata without importing it.

Discovery (:mod:`mofa_kernel._discovery`) asks these for each distribution
that declares plugins: its metadata folder and name, its requirement on
mofa-kernel (and whether the installed mofa-kernel meets it), the file of a
plugin's module, and the project folder of an editable install. The trust
lock (:mod:`mofa_kernel._trust`) uses the last too.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from ._scanner import (
    KERNEL_DISTRIBUTION,
    folder_key,
    kernel_refusal,
    requirement_specifier,
)
from ._source import PluginSource

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


def metadata_folder(dist: importlib.metadata.Distribution) -> str | None:
    """The metadata folder of a distribution found on disk (``None`` inside a zip file)."""
    # PathDistribution keeps its folder in ``_path``; importlib.metadata offers no public way
    # to ask where a distribution's metadata is, and without it nothing is cached.
    folder = getattr(dist, "_path", None)
    return os.fspath(folder) if isinstance(folder, PurePath) else None


def name_from_folder(folder: str | None) -> str | None:
    """The normalised name in a ``name-version.dist-info`` (or ``.egg-info``) folder's name,
    as ``importlib.metadata`` reads it to tell distributions apart."""
    return None if folder is None else folder_key(os.path.basename(folder))


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


def kernel_specifier(dist: importlib.metadata.Distribution) -> str | None:
    """``dist``'s version specifier on mofa-kernel (see ``PluginSource.requires_kernel``)."""
    lines = _parsed_metadata(dist).get_all("Requires-Dist") or dist.requires or ()
    return requirement_specifier(lines)


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
    from ._scanner import editable_path

    path = editable_path(dist.read_text("direct_url.json") or "")
    return None if path is None else Path(path)


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
    version = kernel_version if kernel_version is not None else installed_kernel_version()
    if version is None:
        return None
    return kernel_refusal(source.plugin_id, source.distribution, source.requires_kernel, version)
