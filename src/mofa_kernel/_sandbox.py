"""Fake installed distributions for plugin authors' tests: :class:`EntryPointSandbox`.

Real ``.dist-info`` folders in a temporary folder put on ``sys.path``, which
``importlib.metadata`` (and so discovery) reads exactly as it reads what pip
installs. No pytest import: the fixture that makes a sandbox lives in
:mod:`mofa_kernel._pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from ._metadata import PluginConfig

if TYPE_CHECKING:
    import pytest

    from ._lifecycle_run import LifecycleRun
    from ._manager import PluginManager

__all__ = ["EntryPointSandbox", "LifecycleRunner", "ManagerFactory", "RegisterPlugin"]

_T = TypeVar("_T")

#: The variables a sandbox sets for discovery: autoload, and the ids it may load.
_AUTOLOAD_OFF: Final = "MOFA_DISABLE_PLUGIN_AUTOLOAD"
_ONLY: Final = "MOFA_PLUGINS"
_ENTRY_POINT_NAME: Final = re.compile(r"[\w.-]+", re.ASCII)
_DISTRIBUTION_NAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
_ENTRY_POINT_VALUE: Final = re.compile(r"[\w.]+(:[\w.]+)?", re.ASCII)


def _entry_point_value(target: object) -> str:
    if isinstance(target, str):
        if not _ENTRY_POINT_VALUE.fullmatch(target):
            raise ValueError(f"entry point value {target!r}: expected 'module' or 'module:attr'")
        return target
    if inspect.ismodule(target):
        return target.__name__
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(
            f"cannot name {target!r} in an entry point: give a class, a function, a module "
            "or a 'module:attr' string"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"{qualname} is defined inside a function; an entry point can only name "
            "what a module defines at its top level"
        )
    return f"{module}:{qualname}"


def _inside(path: str, root: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


class EntryPointSandbox:
    """Entry points that ``discover()`` sees as installed, without installing anything.

    Each distribution is written as a ``.dist-info`` folder (``METADATA``,
    ``entry_points.txt``, ``RECORD``) in a temporary folder put on
    ``sys.path``, which ``importlib.metadata`` reads exactly as it reads what
    pip installs. Discovery then loads the plugins this sandbox added or
    allowed, and no other (``MOFA_PLUGINS`` names exactly those). When the
    test ends, ``sys.path`` and the environment are restored and the modules
    imported from the sandbox are removed from ``sys.modules``.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root.resolve()
        self._monkeypatch = monkeypatch
        self._allowed: set[str] = set()
        self._on_path = False
        self.root.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        plugin_id: str,
        target: object,
        *,
        distribution: str | None = None,
        version: str = "1.0",
        files: Mapping[str, str] | None = None,
        requires: Iterable[str] = ("mofa-kernel",),
    ) -> Path:
        """Declare plugin ``plugin_id`` as an installed entry point; return its dist-info folder.

        ``target`` is what the entry point names: a ``"module:attr"`` string,
        or a class, factory function or module defined at a module's top
        level. ``files`` maps paths (relative to the sandbox, which is on
        ``sys.path``) to the text of modules to write beside it, for
        plugins that exist only in the test. The distribution is called
        ``distribution`` (default ``fake-<plugin_id>``).
        """
        name = distribution if distribution is not None else f"fake-{plugin_id}"
        return self.add_distribution(
            name, {plugin_id: target}, version=version, files=files, requires=requires
        )

    def add_distribution(
        self,
        name: str,
        plugins: Mapping[str, object],
        *,
        version: str = "1.0",
        files: Mapping[str, str] | None = None,
        requires: Iterable[str] = ("mofa-kernel",),
    ) -> Path:
        """Declare a distribution with several plugins (id -> target, as for :meth:`add`)."""
        lines = []
        for plugin_id, target in plugins.items():
            if not _ENTRY_POINT_NAME.fullmatch(plugin_id):
                raise ValueError(
                    f"plugin id {plugin_id!r}: use letters, digits, '_', '.' and '-' only"
                )
            lines.append(f"{plugin_id} = {_entry_point_value(target)}\n")
        if not _DISTRIBUTION_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid distribution name")
        if not re.fullmatch(r"[\w.+!-]+", version, re.ASCII):
            raise ValueError(f"{version!r} is not a valid version")
        dist_info = self.root / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
        if dist_info.exists():
            raise ValueError(f"distribution {name!r} {version} was already added")
        written = [self._write_file(relative, text) for relative, text in (files or {}).items()]
        dist_info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
        (dist_info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
        (dist_info / "entry_points.txt").write_text(
            "[mofa.plugins]\n" + "".join(lines), encoding="utf-8"
        )
        record = [*written, f"{dist_info.name}/METADATA", f"{dist_info.name}/entry_points.txt"]
        record.append(f"{dist_info.name}/RECORD")
        (dist_info / "RECORD").write_text("".join(f"{r},,\n" for r in record), encoding="utf-8")
        if not self._on_path:
            self._monkeypatch.syspath_prepend(str(self.root))
            self._on_path = True
        importlib.invalidate_caches()
        self.use_installed(*plugins)
        return dist_info

    def _write_file(self, relative: str, text: str) -> str:
        target = (self.root / relative).resolve()
        if Path(relative).is_absolute() or not target.is_relative_to(self.root):
            raise ValueError(f"{relative!r} is not a path inside the sandbox")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target.relative_to(self.root).as_posix()

    def use_installed(self, *plugin_ids: str) -> None:
        """Let ``discover()`` load these plugin ids from what is really installed, too."""
        self._allowed.update(plugin_ids)
        self._monkeypatch.delenv(_AUTOLOAD_OFF, raising=False)
        self._monkeypatch.setenv(_ONLY, ",".join(sorted(self._allowed)))

    def close(self) -> None:
        """Forget the modules imported from the sandbox (the fixture calls this)."""
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            places = [namespace.get("__file__")]
            with contextlib.suppress(TypeError):
                places += list(namespace.get("__path__") or ())
            if any(isinstance(p, str) and _inside(p, self.root) for p in places):
                del sys.modules[name]
        importlib.invalidate_caches()


# -- the fixtures' types ---------------------------------------------------------------------


class ManagerFactory(Protocol):
    """The type of ``mofa_manager_factory``: makes an isolated manager."""

    def __call__(self, **options: Any) -> PluginManager: ...


class RegisterPlugin(Protocol):
    """The type of ``mofa_register``: registers a plugin on ``mofa_manager``, returns its id."""

    def __call__(
        self,
        plugin: object,
        *,
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        timeout: float | None = None,
    ) -> str: ...


class LifecycleRunner(Protocol):
    """The type of ``mofa_lifecycle``: :func:`run_lifecycle`."""

    def __call__(
        self,
        plugin: object,
        *,
        inputs: Iterable[str] = (),
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        companions: Iterable[object] = (),
        timeout: float = 10.0,
    ) -> Awaitable[LifecycleRun]: ...
