"""One plugin's code: which modules and files it is, and how to import it afresh.

A :class:`CodeUnit` is the module tree a plugin's code lives in: for an
entry-point plugin, the top-level package of its entry point (the first
regular package below any namespace packages); for an in-process plugin, the
module that defines its class or hooks (with its submodules when it is a
package). Everything a reload does to ``sys.modules`` stays inside that tree.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final

import attrs

from mofa_kernel._errors import PluginError

if TYPE_CHECKING:
    from mofa_kernel._plugin import AgentPlugin
    from mofa_kernel._source import PluginSource

__all__ = [
    "CodeUnit",
    "Fingerprint",
    "ModuleSnapshot",
    "NotReloadable",
    "Recipe",
    "describe_failure",
    "drop_bytecode",
    "entry_point_root",
    "is_native",
    "syntax_error",
]

#: Suffixes of compiled extension modules: they cannot be loaded twice into one process.
NATIVE_SUFFIXES: Final = (*importlib.machinery.EXTENSION_SUFFIXES, ".so", ".pyd", ".dylib")
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "node_modules"})
_KERNEL_DIR: Final = str(Path(__file__).resolve().parent.parent)
_MACHINERY: Final = (
    _KERNEL_DIR,
    str(Path(importlib.__file__ or "").resolve().parent),
    str(Path(inspect.__file__ or "").resolve().parent / "asyncio"),
)


class NotReloadable(Exception):
    """A plugin's code cannot be reloaded (defined in ``__main__``, inside a function, ...)."""


def is_native(path: str | Path) -> bool:
    """Whether ``path`` is a compiled extension module."""
    return str(path).endswith(NATIVE_SUFFIXES)


def _is_namespace(name: str) -> bool:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None) is None and hasattr(module, "__path__")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is None and spec.submodule_search_locations is not None


def entry_point_root(module: str) -> str:
    """The package an entry point's ``module`` belongs to: its first non-namespace ancestor."""
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if not _is_namespace(name):
            return name
    return module


@attrs.frozen
class Fingerprint:
    """What a unit's files hold now.

    ``code`` hashes the Python sources (names and bytes, so a same-size edit
    within the same second still counts); ``native`` and ``data`` hash the
    names, sizes and modification times of compiled extensions and other files.
    """

    code: str
    native: str
    data: str
    #: Each source file's own hash, to tell which files changed.
    sources: Mapping[Path, str] = attrs.field(eq=False, repr=False)
    #: Each compiled extension's (size, modification time).
    natives: Mapping[Path, tuple[int, int]] = attrs.field(eq=False, repr=False, factory=dict)

    def changed_natives(self, before: Fingerprint) -> list[Path]:
        """The compiled extensions that are new, changed or gone since ``before``."""
        paths = set(self.natives) | set(before.natives)
        return sorted(p for p in paths if self.natives.get(p) != before.natives.get(p))

    def changed_sources(self, before: Fingerprint | None) -> list[Path]:
        """The source files that are new or differ from ``before`` (all of them without one)."""
        if before is None:
            return list(self.sources)
        return [path for path, digest in self.sources.items() if before.sources.get(path) != digest]


@attrs.frozen
class CodeUnit:
    """The modules and files that make up one plugin's code.

    ``dirs`` are package folders (watched recursively); ``files`` are modules
    that are single files. Paths are shown relative to ``base``.
    """

    root: str
    dirs: tuple[Path, ...]
    files: tuple[Path, ...]
    base: Path

    @classmethod
    def of_module(cls, root: str) -> CodeUnit:
        """The unit rooted at module ``root``, imported or not; :class:`NotReloadable` if none."""
        if root == "__main__" or root.startswith("__main__."):
            raise NotReloadable("its code is in __main__, which cannot be imported again")
        module = sys.modules.get(root)
        locations: Iterable[str] | None
        if module is not None:
            locations = getattr(module, "__path__", None)
            origin = getattr(module, "__file__", None)
        else:
            try:
                spec = importlib.util.find_spec(root)
            except (ImportError, ValueError) as exc:
                raise NotReloadable(f"module {root} cannot be found: {exc}") from None
            if spec is None:
                raise NotReloadable(f"module {root} cannot be found")
            locations = spec.submodule_search_locations
            origin = spec.origin if spec.has_location else None
        depth = root.count(".") + 1
        if locations is not None:
            dirs = tuple(dict.fromkeys(Path(p).absolute() for p in locations if os.path.isdir(p)))
            if not dirs:
                raise NotReloadable(f"package {root} has no folder on disk")
            base = dirs[0].parents[depth - 1]
            files: tuple[Path, ...] = ()
        elif origin and os.path.isfile(origin):
            dirs = ()
            files = (Path(origin).absolute(),)
            base = files[0].parents[depth - 1]
        else:
            raise NotReloadable(f"module {root} has no source file")
        unit = cls(root, dirs, files, base)
        outside = [path for path in unit.loaded_files() if not unit.owns(path)]
        if outside:
            unit = cls(root, dirs, (*files, *outside), base)
        return unit

    def module_names(self) -> list[str]:
        """The names in ``sys.modules`` that belong to this unit."""
        prefix = self.root + "."
        return [name for name in list(sys.modules) if name == self.root or name.startswith(prefix)]

    def loaded_files(self) -> list[Path]:
        """The files of this unit's modules that are imported now."""
        found = []
        for name in self.module_names():
            file = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(file, str):
                found.append(Path(file).absolute())
        return found

    def loaded_native(self) -> bool:
        """Whether a compiled extension of this unit is imported (and so cannot be replaced)."""
        return any(is_native(path) for path in self.loaded_files())

    def owns(self, path: Path) -> bool:
        """Whether ``path`` (absolute) is one of this unit's files or lies in its folders."""
        if path in self.files:
            return True
        return any(path == folder or folder in path.parents for folder in self.dirs)

    def main_file(self) -> Path:
        """The file a reload of this unit is reported against when no change names one."""
        if self.dirs:
            return self.dirs[0] / "__init__.py"
        return self.files[0]

    def show(self, filename: str) -> str:
        """``filename`` relative to the unit's base (or a ``sys.path`` entry) for messages."""
        path = Path(filename)
        for base in (self.base, *(Path(entry) for entry in sys.path if entry)):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return filename

    def _walk(self) -> Iterator[Path]:
        for folder in self.dirs:
            for here, subdirs, names in os.walk(folder):
                subdirs[:] = sorted(
                    d for d in subdirs if d not in _SKIPPED_DIRS and not d.startswith(".")
                )
                for name in sorted(names):
                    yield Path(here, name)
        yield from self.files

    def fingerprint(self) -> Fingerprint:
        """Hash what this unit's files hold now (sources by content, the rest by stat)."""
        code = hashlib.blake2b(digest_size=16)
        native = hashlib.blake2b(digest_size=16)
        data = hashlib.blake2b(digest_size=16)
        sources: dict[Path, str] = {}
        natives: dict[Path, tuple[int, int]] = {}
        for path in self._walk():
            name = str(path).encode("utf-8", "surrogateescape")
            try:
                if path.suffix == ".py":
                    digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
                    sources[path] = digest
                    code.update(name + b"\0" + digest.encode() + b"\0")
                    continue
                stat = path.stat()
            except OSError:
                continue  # removed while we looked: the next change reports it
            line = name + f"\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode()
            if is_native(path):
                natives[path] = (stat.st_size, stat.st_mtime_ns)
                native.update(line)
            else:
                data.update(line)
        return Fingerprint(code.hexdigest(), native.hexdigest(), data.hexdigest(), sources, natives)


def syntax_error(paths: Iterable[Path]) -> SyntaxError | None:
    """The first syntax error among the Python files ``paths``, or ``None``."""
    for path in paths:
        try:
            source = path.read_bytes()
        except OSError:
            continue  # a removed file: the import reports it with the line that needs it
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the import shows SyntaxWarnings, once
                compile(source, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            return exc
        except ValueError as exc:  # null bytes
            return SyntaxError(str(exc), (str(path), 1, 0, ""))
    return None


def drop_bytecode(paths: Iterable[Path]) -> None:
    """Delete the cached bytecode of ``paths``, so the next import compiles what is on disk.

    A cached ``.pyc`` is trusted when the source's size and whole-second
    modification time match, which a quick same-size edit does.
    """
    for path in paths:
        for optimization in ("", 1, 2):
            try:
                cached = importlib.util.cache_from_source(str(path), optimization=optimization)
            except (NotImplementedError, ValueError):
                continue
            try:
                os.unlink(cached)
            except FileNotFoundError:
                pass
            except OSError:
                continue  # read-only install: the size-and-time check is all there is


_MISSING: Final = object()


class ModuleSnapshot:
    """A unit's entries in ``sys.modules`` (and its binding in a parent package), to put back."""

    __slots__ = ("_binding", "_child", "_parent", "modules", "root")

    def __init__(self, unit: CodeUnit) -> None:
        self.root = unit.root
        self.modules: dict[str, ModuleType | None] = {
            name: sys.modules[name] for name in unit.module_names()
        }
        parent_name, _, self._child = unit.root.rpartition(".")
        self._parent = sys.modules.get(parent_name) if parent_name else None
        self._binding = getattr(self._parent, self._child, _MISSING) if self._parent else _MISSING

    def clear(self) -> None:
        """Remove the unit from ``sys.modules`` (compiled extensions stay: they cannot reload)."""
        for name, module in self.modules.items():
            if module is None or not is_native(getattr(module, "__file__", None) or ""):
                sys.modules.pop(name, None)

    def restore(self) -> None:
        """Put the snapshot back, dropping whatever a failed import left behind."""
        prefix = self.root + "."
        for name in list(sys.modules):
            if (name == self.root or name.startswith(prefix)) and name not in self.modules:
                del sys.modules[name]
        for name, module in self.modules.items():
            sys.modules[name] = module  # type: ignore[assignment]  # None blocks an import
        if self._parent is not None:
            if self._binding is _MISSING:
                if hasattr(self._parent, self._child):
                    delattr(self._parent, self._child)
            else:
                setattr(self._parent, self._child, self._binding)

    def namespaces(self) -> set[int]:
        """The ids of the snapshot modules' global namespaces (to recognise their code)."""
        return {id(vars(module)) for module in self.modules.values() if module is not None}


def current_namespaces(unit: CodeUnit) -> set[int]:
    """The ids of the global namespaces of the unit's modules in ``sys.modules`` now."""
    found = set()
    for name in unit.module_names():
        module = sys.modules.get(name)
        if module is not None:
            found.add(id(vars(module)))
    return found


@attrs.frozen
class Recipe:
    """How to build a plugin object again from freshly imported modules.

    ``kind`` is ``"source"`` (an entry point: import it and build as discovery
    does), ``"module"`` (the module itself is the plugin), ``"attribute"`` (a
    module attribute: a class of hooks or a module-level instance) or
    ``"instance"`` (call the class with no arguments).
    """

    kind: str
    module: str
    qualname: str | None = None

    @classmethod
    def of(cls, target: object) -> Recipe:
        """The recipe for an in-process plugin object (an AgentPlugin or a hooks object)."""
        if inspect.ismodule(target):
            return cls("module", target.__name__)
        if isinstance(target, type):
            return cls("attribute", _module_of(target), _qualname_of(target))
        module_name = _module_of(type(target))
        module = sys.modules.get(module_name)
        for name, value in vars(module).items() if module is not None else ():
            if value is target:
                return cls("attribute", module_name, name)
        return cls("instance", module_name, _qualname_of(type(target)))

    def build(self, source: PluginSource | None) -> object:
        """Import afresh and return the plugin object (exceptions propagate as they are)."""
        if self.kind == "source":
            from mofa_kernel._discovery import load_plugin_object

            assert source is not None
            return load_plugin_object(source)
        module = importlib.import_module(self.module)
        if self.kind == "module":
            return module
        target: object = module
        for part in (self.qualname or "").split("."):
            target = getattr(target, part)
        if self.kind == "instance":
            assert isinstance(target, type)
            return target()
        return target


def _module_of(cls: type) -> str:
    module = cls.__module__
    if module == "__main__":
        raise NotReloadable(f"{cls.__qualname__} is defined in __main__")
    return module


def _qualname_of(cls: type) -> str:
    if "<locals>" in cls.__qualname__:
        raise NotReloadable(f"{cls.__qualname__} is defined inside a function")
    return cls.__qualname__


def target_of(agent: AgentPlugin) -> object:
    """What the author registered: the hooks object of a module-style plugin, else the plugin."""
    from mofa_kernel._adapters import HookPlugin

    return agent.hooks if isinstance(agent, HookPlugin) else agent


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.msg:
        return exc.msg
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines)


def _is_machinery(filename: str) -> bool:
    return filename.startswith("<") or filename.startswith(_MACHINERY)


def describe_failure(step: str, exc: BaseException, unit: CodeUnit | None) -> str:
    """``"load: RuntimeError: no database (hotpkg/__init__.py:12)"``: step, error, file and line.

    The location is the plugin's own innermost frame (for a syntax error,
    the offending line), shown relative to the plugin's folder.
    """
    original = exc
    while isinstance(original, PluginError) and original.__cause__ is not None:
        original = original.__cause__
    message = _one_line(original)
    text = f"{type(original).__name__}: {message}" if message else type(original).__name__
    filename: str | None = None
    lineno: int | None = None
    if isinstance(original, SyntaxError) and original.filename:
        filename, lineno = original.filename, original.lineno
    else:
        fallback: tuple[str, int | None] | None = None
        for frame in traceback.extract_tb(original.__traceback__):
            if _is_machinery(frame.filename):
                continue
            if unit is not None and unit.owns(Path(frame.filename)):
                filename, lineno = frame.filename, frame.lineno
            fallback = (frame.filename, frame.lineno)
        if filename is None and fallback is not None:
            filename, lineno = fallback
    if filename is None:
        return f"{step}: {text}"
    shown = unit.show(filename) if unit is not None else filename
    return f"{step}: {text} ({shown}:{lineno})" if lineno else f"{step}: {text} ({shown})"
