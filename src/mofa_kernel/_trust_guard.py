"""The trust lock at import time: modules of locked distributions run only as verified bytes.

:mod:`mofa_kernel._trust` decides, by reading files, whether a distribution
is the one a person approved. Between that check and the import, a file
could be swapped, a package could appear beside an approved module, or a
copy earlier on ``sys.path`` could shadow it. With ``kernel.trust =
"refuse"``, :data:`GUARD` closes those gaps: it sits first on
``sys.meta_path`` and, for every module that an approved or refused
distribution's RECORD claims,

- refuses the import when the module would come from a file that RECORD
  does not hash (a shadow copy, an added package or module, a stray ``.pyc``),
  or when the distribution was refused;
- otherwise loads source modules from the bytes it read and hashed itself
  (never from a cached ``.pyc``), so the code that runs is exactly the code
  that matched RECORD. Extension modules are hashed just before the
  interpreter loads them from disk.

A worker process of an isolated plugin enforces the very same lock:
:meth:`TrustGuard.snapshot` hands the verdicts, with the digests this process
verified, to the worker, whose :meth:`TrustGuard.restore` installs them before
it imports the plugin.

:func:`entry_point_problem` resolves an entry point's module the way the
import system will, without importing anything.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Final

import attrs

__all__ = ["GUARD", "Claims", "TrustGuard", "entry_point_problem", "module_name_of"]

_SOURCE: Final = tuple(importlib.machinery.SOURCE_SUFFIXES)
_EXTENSIONS: Final = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _digest(data: bytes, algorithm: str) -> str:
    raw = hashlib.new(algorithm, data).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def module_name_of(relative: str) -> tuple[str, bool] | None:
    """The module a RECORD path stands for and whether it is a package's ``__init__``
    (``"a/b/__init__.py"`` -> ``("a.b", True)``), or ``None`` for a file that is no module."""
    parts = relative.split("/")
    if any(not part.isidentifier() for part in parts[:-1]):
        return None  # ``x.dist-info/``, ``../../bin``, ``__pycache__`` contents are no modules
    last = parts[-1]
    for suffix in (*_SOURCE, *_EXTENSIONS):
        if last.endswith(suffix):
            stem = last[: -len(suffix)]
            break
    else:
        return None
    if stem == "__init__":
        return (".".join(parts[:-1]), True) if len(parts) > 1 else None
    if not stem.isidentifier():
        return None
    return ".".join([*parts[:-1], stem]), False


@attrs.frozen
class Claims:
    """What one distribution's RECORD says about modules: the files it hashes and the module
    names (and regular packages) those files make, for one verdict on the distribution."""

    #: The distribution, as messages name it.
    label: str
    #: The folder RECORD's paths are relative to (a ``sys.path`` entry).
    root: Path
    #: ``None`` when approved, else why its code must not run.
    refusal: str | None
    #: Resolved file -> (hash algorithm, urlsafe-base64 digest), for hashed files.
    hashes: dict[Path, tuple[str, str]]
    modules: frozenset[str]
    packages: frozenset[str]

    @classmethod
    def from_rows(
        cls, label: str, root: Path, rows: Iterable[tuple[str, str, str]], refusal: str | None
    ) -> Claims:
        hashes: dict[Path, tuple[str, str]] = {}
        modules: set[str] = set()
        packages: set[str] = set()
        for name, algorithm, digest in rows:
            if algorithm:
                hashes[(root / name).resolve()] = (algorithm, digest)
            found = module_name_of(name)
            if found is not None:
                modules.add(found[0])
                if found[1]:
                    packages.add(found[0])
        return cls(label, root.resolve(), refusal, hashes, frozenset(modules), frozenset(packages))

    def claims(self, fullname: str) -> bool:
        """Whether ``fullname`` is this distribution's: listed, or inside one of its regular
        packages (so that a module added there is this distribution's problem too)."""
        return fullname in self.modules or fullname.rpartition(".")[0] in self.packages

    def to_data(self) -> dict[str, Any]:
        """This verdict as JSON data, for a worker process (see :meth:`TrustGuard.snapshot`)."""
        return {
            "label": self.label,
            "root": str(self.root),
            "refusal": self.refusal,
            "hashes": [[str(path), *expected] for path, expected in self.hashes.items()],
            "modules": sorted(self.modules),
            "packages": sorted(self.packages),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Claims:
        """The verdict :meth:`to_data` wrote: the same paths and digests, read from no file."""
        hashes = {Path(path): (str(alg), str(digest)) for path, alg, digest in data["hashes"]}
        return cls(
            str(data["label"]),
            Path(data["root"]),
            None if data["refusal"] is None else str(data["refusal"]),
            hashes,
            frozenset(data["modules"]),
            frozenset(data["packages"]),
        )


class _VerifiedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the module from the bytes it hashed; never reads or writes a ``.pyc``."""

    def __init__(self, fullname: str, path: str, expected: tuple[str, str], label: str) -> None:
        super().__init__(fullname, path)
        self._expected = expected
        self._label = label

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        with open(path, "rb") as file:
            data = file.read()
        algorithm, digest = self._expected
        if _digest(data, algorithm) != digest:
            raise ImportError(
                f"refused by the trust lock: {path} of {self._label} changed after it was verified",
                name=fullname,
                path=path,
            )
        code: CodeType = compile(data, path, "exec", dont_inherit=True)
        return code


class _VerifiedExtensionLoader(importlib.machinery.ExtensionFileLoader):
    """Hashes an extension module right before the interpreter loads it from its file."""

    def __init__(self, fullname: str, path: str, expected: tuple[str, str], label: str) -> None:
        super().__init__(fullname, path)
        self._expected = expected
        self._label = label

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        with open(self.path, "rb") as file:
            data = file.read()
        algorithm, digest = self._expected
        if _digest(data, algorithm) != digest:
            raise ImportError(
                f"refused by the trust lock: {self.path} of {self._label} changed after it "
                f"was verified",
                name=spec.name,
                path=self.path,
            )
        return super().create_module(spec)


class TrustGuard(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder for the modules of the distributions the lock has judged.

    A distribution counts only while its folder is on ``sys.path``; the latest
    verdict on a folder replaces the earlier one.
    """

    def __init__(self) -> None:
        self._claims: dict[Path, Claims] = {}
        self._lock = threading.Lock()

    def judge(self, folder: Path, claims: Claims) -> None:
        """Record the latest verdict on the distribution whose metadata is in ``folder``,
        and make sure the guard is installed."""
        with self._lock:
            self._claims[folder] = claims
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every verdict held now, as JSON data: what a worker process needs to enforce the
        very lock this process enforces (the digests this process verified, not RECORD's
        text read again, which could have changed since)."""
        with self._lock:
            held = list(self._claims.items())
        return [{"folder": str(folder), **claims.to_data()} for folder, claims in held]

    def restore(self, snapshot: Iterable[Mapping[str, Any]]) -> None:
        """Take on the verdicts of another process's :meth:`snapshot` and install the guard."""
        for data in snapshot:
            self.judge(Path(data["folder"]), Claims.from_data(data))

    def clear(self) -> None:
        """Forget every verdict and leave ``sys.meta_path``."""
        with self._lock:
            self._claims.clear()
            if self in sys.meta_path:
                sys.meta_path.remove(self)

    def _active(self, fullname: str) -> list[Claims]:
        with self._lock:
            candidates = [c for c in self._claims.values() if c.claims(fullname)]
        if not candidates:
            return []
        on_path = {os.path.realpath(entry or os.curdir) for entry in sys.path}
        return [c for c in candidates if str(c.root) in on_path]

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        claimants = self._active(fullname)
        if not claimants:
            return None
        spec = _spec_from_others(self, fullname, path, target)
        if spec is None:
            return None
        if spec.origin is None or not spec.has_location:
            if spec.submodule_search_locations is not None:
                return spec  # a namespace portion: its modules are judged one by one
            raise ImportError(
                f"refused by the trust lock: module {fullname} of {claimants[0].label} "
                f"would not come from a file its RECORD hashes",
                name=fullname,
            )
        origin = Path(spec.origin).resolve()
        for claims in claimants:
            if origin in claims.hashes and claims.refusal is None:
                return _verified(spec, str(origin), claims.hashes[origin], claims.label)
        refused = [c for c in claimants if c.refusal is not None]
        if refused:
            raise ImportError(
                f"refused by the trust lock: module {fullname} belongs to {refused[0].refusal}",
                name=fullname,
            )
        raise ImportError(
            f"refused by the trust lock: module {fullname} of {claimants[0].label} would be "
            f"imported from {spec.origin}, which its RECORD does not hash",
            name=fullname,
        )


def _spec_from_others(
    guard: TrustGuard, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        if finder is guard:
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _verified(
    spec: importlib.machinery.ModuleSpec, origin: str, expected: tuple[str, str], label: str
) -> importlib.machinery.ModuleSpec:
    loader: importlib.abc.Loader
    if origin.endswith(_SOURCE):
        loader = _VerifiedSourceLoader(spec.name, origin, expected, label)
    elif origin.endswith(_EXTENSIONS):
        loader = _VerifiedExtensionLoader(spec.name, origin, expected, label)
    else:
        raise ImportError(
            f"refused by the trust lock: {origin} of {label} is neither source nor an "
            f"extension module",
            name=spec.name,
        )
    verified = importlib.machinery.ModuleSpec(
        spec.name, loader, origin=origin, is_package=spec.submodule_search_locations is not None
    )
    if spec.submodule_search_locations is not None:
        verified.submodule_search_locations = list(spec.submodule_search_locations)
    verified.has_location = True
    return verified


def entry_point_problem(module: str, hashes: dict[Path, tuple[str, str]]) -> str | None:
    """Why ``module`` (an entry point's) would not be imported from a file in ``hashes``,
    or ``None`` when it and every package above it would. Resolves the names as the path
    finder does, one level at a time, importing nothing."""
    search: list[str] | None = None
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:
            return f"module {name} is not found"
        if spec.origin is not None and spec.has_location:
            origin = Path(spec.origin).resolve()
            if origin not in hashes:
                return f"module {name} resolves to {spec.origin}, which RECORD does not hash"
        elif depth == len(parts):
            return f"module {name} resolves to no file"
        search = list(spec.submodule_search_locations or [])
    return None


#: The one guard of this process (installed on first use, with ``kernel.trust = "refuse"``).
GUARD: Final = TrustGuard()
