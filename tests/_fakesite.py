"""Installed distributions made on disk for in-process tests: real dist-info folders on sys.path.

importlib.metadata reads them exactly as it reads what pip installs, so
discovery runs for real without touching the test environment's site-packages.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest


class FakeSite:
    """A folder on ``sys.path`` to which tests add distributions and their modules."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.modules: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(root))

    def add(
        self,
        name: str,
        version: str | None = "1.0",
        *,
        plugins: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
        requires: Sequence[str] = (),
        entry_points_text: str | None = None,
        metadata_name: bool = True,
        editable_project: Path | None = None,
    ) -> Path:
        """Write a distribution: ``plugins`` maps id -> "module:attr", ``files`` path -> text."""
        files = dict(files or {})
        dist_info = self.root / f"{name.replace('-', '_')}-{version or '0'}.dist-info"
        dist_info.mkdir()
        lines = ["Metadata-Version: 2.1"]
        if metadata_name:
            lines.append(f"Name: {name}")
        if version is not None:
            lines.append(f"Version: {version}")
        lines += [f"Requires-Dist: {requirement}" for requirement in requires]
        (dist_info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if entry_points_text is None and plugins:
            entry_points_text = "[mofa.plugins]\n" + "".join(
                f"{plugin_id} = {value}\n" for plugin_id, value in plugins.items()
            )
        if entry_points_text is not None:
            (dist_info / "entry_points.txt").write_text(entry_points_text, encoding="utf-8")
        if editable_project is not None:
            url = editable_project.as_uri()
            direct_url = {"url": url, "dir_info": {"editable": True}}
            (dist_info / "direct_url.json").write_text(json.dumps(direct_url), encoding="utf-8")
        record = [f"{dist_info.name}/{meta.name},," for meta in sorted(dist_info.iterdir())]
        record.append(f"{dist_info.name}/RECORD,,")
        for relative, text in files.items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            record.append(f"{relative},,")
            self.modules.add(relative.split("/")[0].removesuffix(".py"))
        (dist_info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
        importlib.invalidate_caches()
        return dist_info

    def forget_modules(self) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in self.modules:
                del sys.modules[name]


def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """Body of a test module's ``site`` fixture: a FakeSite whose modules are forgotten after."""
    fake = FakeSite(tmp_path / "site", monkeypatch)
    yield fake
    fake.forget_modules()
