"""Wheels written byte by byte, for the attacks no build backend would produce.

A hostile author is not bound to hatchling: the wheel's dist-info folder may
carry another name than its METADATA, it may ship a second metadata folder,
a ``.pth`` file, anything. :func:`build_wheel` writes such a wheel with a
RECORD that hashes every file, as a real one does; pip installs it like any
other. :func:`remove_installed` takes one away again, file by file from its
installed RECORD (pip cannot always be asked to, when names lie).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path


def _hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(
    dest: Path,
    *,
    name: str,
    version: str = "1.0",
    files: Mapping[str, str],
    plugins: Mapping[str, str] | None = None,
    metadata_name: str | None = None,
) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` into ``dest``.

    ``files`` maps a path inside the wheel to its text (extra metadata folders
    included); ``plugins`` maps plugin id -> entry point; ``metadata_name``
    is the ``Name:`` written in METADATA (default: ``name``).
    """
    stem = name.replace("-", "_")
    dist_info = f"{stem}-{version}.dist-info"
    content: dict[str, bytes] = {path: text.encode() for path, text in files.items()}
    content[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {metadata_name or name}\nVersion: {version}\n"
        f"Requires-Dist: mofa-kernel\n"
    ).encode()
    content[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mofa-kernel-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    if plugins:
        lines = "".join(f"{pid} = {value}\n" for pid, value in plugins.items())
        content[f"{dist_info}/entry_points.txt"] = f"[mofa.plugins]\n{lines}".encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in content.items():
        writer.writerow([path, _hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    content[f"{dist_info}/RECORD"] = record.getvalue().encode()
    wheel = dest / f"{stem}-{version}-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in content.items():
            archive.writestr(path, data)
    return wheel


def remove_installed(site_packages: Path, dist_info: str) -> None:
    """Delete every file the installed ``dist_info`` folder's RECORD lists, then the folders
    that are left empty."""
    record = (site_packages / dist_info / "RECORD").read_text(encoding="utf-8")
    folders: set[Path] = set()
    for row in csv.reader(record.splitlines()):
        if not row:
            continue
        path = (site_packages / row[0]).resolve()
        path.unlink(missing_ok=True)
        folders.update(p for p in path.parents if p.is_relative_to(site_packages.resolve()))
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder == site_packages.resolve() or not folder.is_dir():
            continue
        for cache in folder.glob("__pycache__"):
            for compiled in cache.iterdir():
                compiled.unlink()
            cache.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
