"""An optional lock of approved plugin distributions, checked against their RECORD hashes.

Installing a distribution should not mean that the host trusts it, nor that
it keeps trusting it after its files change. A :class:`TrustLock` (the file
``mofa-trust.json``) names the distributions a person approved, each with its
version and a digest of its ``RECORD``, the installer's list of every file
with its hash. :meth:`TrustLock.verify` says whether an installed
distribution is still what was approved: same version, same RECORD, and every
file RECORD lists still has the hash RECORD gives (no file edited in place,
none missing, no module added beside them). It reads files and never imports
them. :func:`exclusion_rule` turns a lock into a rule for
:func:`mofa_kernel._discovery.survey` that warns about, or refuses, plugins
whose distribution is not approved.

``kernel.trust`` in the configuration switches it on for discovery
(:func:`mofa_kernel._config.plugin_rule`); ``mofa-kernel plugins approve``
writes the lock.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.machinery
import importlib.metadata
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import attrs

from ._distributions import editable_project
from ._errors import PluginConfigError

if TYPE_CHECKING:
    from ._source import ExclusionRule, PluginSource

__all__ = [
    "LOCK_FILE_NAME",
    "Approval",
    "TrustLock",
    "TrustMode",
    "Verdict",
    "approve_all",
    "exclusion_rule",
    "find_distribution",
    "record_problems",
    "startup_problems",
]

#: The lock file looked for beside the configuration file.
LOCK_FILE_NAME: Final = "mofa-trust.json"
_FORMAT: Final = 1
#: Hashes RECORD may use that are strong enough to stand for a file (PEP 376 refuses the rest).
_STRONG_HASHES: Final = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b"})
_IMPORTABLE: Final = tuple(sorted(set(importlib.machinery.all_suffixes()), key=len, reverse=True))

_logger = logging.getLogger("mofa_kernel")

#: ``"warn"``: log and load anyway; ``"refuse"``: never import what is not approved.
TrustMode = Literal["warn", "refuse"]
#: ``"approved"``, ``"unapproved"`` (not in the lock), ``"changed"`` (in the lock, but
#: not what was approved) or ``"unverifiable"`` (no RECORD to check, or an editable install).
Status = Literal["approved", "unapproved", "changed", "unverifiable"]


def _normalize(name: str) -> str:
    from ._source import normalize_name

    return normalize_name(name)


def _metadata_name(dist: importlib.metadata.Distribution) -> str:
    names = dist.metadata.get_all("Name")
    name = names[0] if names else None
    if not name:
        raise ValueError(f"the distribution in {dist.locate_file('')} has no Name")
    return str(name)


def _record_text(dist: importlib.metadata.Distribution) -> str | None:
    return dist.read_text("RECORD")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def _record_rows(record: str) -> list[tuple[str, str, str]]:
    """RECORD's rows as (path, algorithm, urlsafe-base64 digest); unhashed rows have empty
    algorithm and digest. Read here rather than through ``Distribution.files``, which leaves
    out files that no longer exist on Python 3.12 and newer."""
    rows = []
    for row in csv.reader(record.splitlines()):
        if not row or not row[0]:
            continue
        algorithm, _, digest = (row[1] if len(row) > 1 else "").partition("=")
        rows.append((row[0], algorithm, digest))
    return rows


def _metadata_dir(dist: importlib.metadata.Distribution) -> Path | None:
    # PathDistribution keeps its folder in ``_path``; importlib.metadata offers no public way
    # to ask where a distribution's metadata is.
    folder = getattr(dist, "_path", None)
    return Path(folder).resolve() if isinstance(folder, os.PathLike) else None


def record_problems(dist: importlib.metadata.Distribution) -> list[str]:
    """How the files of ``dist`` differ from what its RECORD says, one phrase each.

    Checks that RECORD lists the metadata folder it is in (so a RECORD copied
    into another folder proves nothing), every file RECORD lists with a hash
    (files listed without one, such as compiled ``.pyc``, cannot be checked),
    and that the folders holding those files contain nothing else: no added
    file, module or package (``__pycache__`` folders aside). Reads; never imports.
    """
    record = _record_text(dist)
    if record is None:
        return ["no RECORD"]
    problems: list[str] = []
    root = Path(str(dist.locate_file(""))).resolve()
    listed: set[Path] = set()
    holders: set[Path] = set()  # every folder under root holding a listed file
    package_dirs: set[Path] = set()
    for name, algorithm, expected in _record_rows(record):
        path = Path(str(dist.locate_file(name))).resolve()
        listed.add(path)
        inside = path.is_relative_to(root)
        if inside:
            holders.update(p for p in path.parents if p.is_relative_to(root))
        if not algorithm:
            continue
        if inside and path.parent != root:
            package_dirs.add(path.parent)
        if algorithm not in _STRONG_HASHES:
            problems.append(f"{name}: RECORD uses the weak or unknown hash {algorithm!r}")
            continue
        try:
            actual = _file_hash(path, algorithm)
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        except OSError as exc:
            problems.append(f"{name}: unreadable ({exc.strerror or type(exc).__name__})")
            continue
        if actual != expected:
            problems.append(f"{name}: modified since it was installed")
    folder = _metadata_dir(dist)
    if folder is not None and folder / "RECORD" not in listed:
        problems.append(f"{folder.name}/RECORD: does not list its own folder (copied from another)")
    for package_dir in sorted(package_dirs):
        try:
            entries = sorted(package_dir.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name == "__pycache__" and entry.is_dir():
                continue  # never executed under the lock: modules compile from verified source
            resolved = entry.resolve()
            if resolved in listed or resolved in holders:
                continue
            kind = "folder" if entry.is_dir() else "file"
            problems.append(f"{entry.relative_to(root).as_posix()}: a {kind} not in RECORD (added)")
    return problems


def startup_problems(dist: importlib.metadata.Distribution) -> list[str]:
    """What ``dist`` makes the interpreter do at start-up, outside what RECORD can vouch for:
    a ``.pth`` file that adds a folder to ``sys.path`` or runs an ``import`` line."""
    record = _record_text(dist) or ""
    problems: list[str] = []
    for name, _, _ in _record_rows(record):
        if "/" in name or not name.endswith(".pth"):
            continue
        try:
            text = Path(str(dist.locate_file(name))).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # a missing .pth is reported by record_problems
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                problems.append(f"{name}: runs code when the interpreter starts")
            else:
                problems.append(f"{name}: adds {line} to sys.path, outside RECORD")
    return problems


@attrs.frozen
class Approval:
    """One approved distribution: its name and version and the digest of its RECORD."""

    distribution: str
    version: str | None
    #: The SHA-256 of the RECORD file's text, in hex.
    record_sha256: str
    #: How many files RECORD lists with a hash (for people reading the lock).
    files: int = 0


@attrs.frozen
class Verdict:
    """What :meth:`TrustLock.verify` found for one distribution."""

    distribution: str
    status: Status
    problems: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    def describe(self) -> str:
        """One line: ``"trust-alpha: changed since approval (trust_alpha/x.py: modified ...)"``."""
        words = {
            "approved": "approved",
            "unapproved": "not approved",
            "changed": "changed since approval",
            "unverifiable": "cannot be verified",
        }[self.status]
        detail = f" ({'; '.join(self.problems)})" if self.problems else ""
        return f"{self.distribution}: {words}{detail}"


def _problem(source: str, where: str, message: str) -> str:
    return f"{source}: {where}: {message}"


@attrs.frozen
class TrustLock:
    """The approved distributions, by normalised name; an empty lock approves nothing."""

    approvals: Mapping[str, Approval] = attrs.field(factory=dict)

    def approve(self, dist: importlib.metadata.Distribution) -> TrustLock:
        """A lock that also approves ``dist`` as it is installed now.

        Raises :class:`~mofa_kernel.PluginConfigError` for a distribution that
        cannot be verified later (no RECORD, or an editable install).
        """
        name = _metadata_name(dist)
        editable = editable_project(dist)
        if editable is not None:
            raise PluginConfigError(
                f"{name}: an editable install ({editable}) cannot be approved: "
                f"RECORD does not cover its code"
            )
        record = _record_text(dist)
        if record is None:
            raise PluginConfigError(f"{name}: has no RECORD to approve")
        startup = startup_problems(dist)
        if startup:
            raise PluginConfigError(
                "\n".join(f"{name}: {problem}; it cannot be approved" for problem in startup)
            )
        problems = record_problems(dist)
        if problems:
            raise PluginConfigError(
                "\n".join(
                    f"{name}: {problem}; reinstall it before approving" for problem in problems
                )
            )
        hashed = sum(1 for _, algorithm, _ in _record_rows(record) if algorithm)
        approval = Approval(name, dist.version, _digest(record), hashed)
        return attrs.evolve(self, approvals={**self.approvals, _normalize(name): approval})

    def revoke(self, name: str) -> TrustLock:
        """A lock without the approval of distribution ``name``."""
        key = _normalize(name)
        return attrs.evolve(self, approvals={k: v for k, v in self.approvals.items() if k != key})

    def verify(self, dist: importlib.metadata.Distribution) -> Verdict:
        """Whether ``dist``, as installed now, is the distribution that was approved."""
        name = _metadata_name(dist)
        approval = self.approvals.get(_normalize(name))
        if approval is None:
            return Verdict(name, "unapproved")
        editable = editable_project(dist)
        if editable is not None:
            return Verdict(name, "unverifiable", (f"editable install of {editable}",))
        record = _record_text(dist)
        if record is None:
            return Verdict(name, "unverifiable", ("no RECORD",))
        startup = startup_problems(dist)
        if startup:
            return Verdict(name, "unverifiable", tuple(startup))
        problems: list[str] = []
        if dist.version != approval.version:
            problems.append(f"version {dist.version}, approved {approval.version}")
        if _digest(record) != approval.record_sha256:
            problems.append("RECORD differs from the approved one")
        problems += record_problems(dist)
        return Verdict(name, "changed" if problems else "approved", tuple(problems))

    # -- the lock file ------------------------------------------------------------------

    def to_json(self) -> str:
        """The lock file's text: sorted, indented, one approval per distribution."""
        approved = {key: attrs.asdict(approval) for key, approval in sorted(self.approvals.items())}
        return json.dumps({"version": _FORMAT, "approved": approved}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = LOCK_FILE_NAME) -> TrustLock:
        """Read a lock file's text; :class:`~mofa_kernel.PluginConfigError` lists every problem."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PluginConfigError(f"{source}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PluginConfigError(f"{source}: expected a JSON object")
        problems: list[str] = []
        if data.get("version") != _FORMAT:
            problems.append(_problem(source, "version", f"expected {_FORMAT}"))
        approved = data.get("approved", {})
        if not isinstance(approved, dict):
            raise PluginConfigError(_problem(source, "approved", "expected an object"))
        approvals: dict[str, Approval] = {}
        for key, entry in approved.items():
            where = f"approved.{key}"
            try:
                approval = _approval(entry)
            except ValueError as exc:
                problems.append(_problem(source, where, str(exc)))
                continue
            if _normalize(approval.distribution) != key:
                problems.append(
                    _problem(source, where, f"is keyed {key!r} but names {approval.distribution!r}")
                )
                continue
            approvals[key] = approval
        for key in sorted(set(data) - {"version", "approved"}):
            problems.append(_problem(source, key, "unknown key"))
        if problems:
            raise PluginConfigError("\n".join(problems))
        return cls(approvals)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TrustLock:
        """The lock in ``path``; a missing file is an error (no lock means no lock asked for)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PluginConfigError(f"{path}: trust lock not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PluginConfigError(f"{path}: cannot read the trust lock: {exc}") from None
        return cls.from_json(text, source=str(path))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the lock to ``path`` (replacing it whole, so a reader never sees half)."""
        target = Path(path)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(self.to_json(), encoding="utf-8")
        os.replace(partial, target)


def _approval(entry: object) -> Approval:
    if not isinstance(entry, dict):
        raise ValueError("expected an object")
    unknown = sorted(set(entry) - {"distribution", "version", "record_sha256", "files"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    name, version = entry.get("distribution"), entry.get("version")
    digest, files = entry.get("record_sha256"), entry.get("files", 0)
    if not isinstance(name, str) or not name:
        raise ValueError("distribution: expected a name")
    if version is not None and not isinstance(version, str):
        raise ValueError("version: expected a string or null")
    if not (isinstance(digest, str) and len(digest) == 64 and _is_hex(digest)):
        raise ValueError("record_sha256: expected 64 hex digits")
    if not isinstance(files, int) or isinstance(files, bool) or files < 0:
        raise ValueError("files: expected a count")
    return Approval(name, version, digest, files)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def find_distribution(name: str) -> importlib.metadata.Distribution | None:
    """The installed distribution ``name`` that discovery would use (the first on ``sys.path``)."""
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _distribution_of(
    source: PluginSource,
    distributions: Callable[[str], importlib.metadata.Distribution | None],
) -> importlib.metadata.Distribution | None:
    """The distribution that declared ``source``'s entry point: its own metadata folder,
    never another distribution that merely claims the same name."""
    if source.metadata_dir is not None:
        if not source.metadata_dir.is_dir():
            return None
        return importlib.metadata.PathDistribution(source.metadata_dir)
    return distributions(source.distribution) if source.distribution is not None else None


def _judge(source: PluginSource, dist: importlib.metadata.Distribution, verdict: Verdict) -> None:
    """Tell the import guard what the lock decided about ``dist`` (refuse mode only)."""
    from ._trust_guard import GUARD, Claims

    folder = _metadata_dir(dist)
    if folder is None:
        return
    refusal = None if verdict.approved else verdict.describe()
    rows = _record_rows(_record_text(dist) or "")
    root = Path(str(dist.locate_file(""))).resolve()
    GUARD.judge(folder, Claims.from_rows(verdict.distribution, root, rows, refusal))


def _entry_point_verdict(
    source: PluginSource, dist: importlib.metadata.Distribution, verdict: Verdict
) -> Verdict:
    """``verdict``, or "changed" when the entry point's module would be imported from a file
    that RECORD does not hash (shadowed earlier on ``sys.path``, or replaced by a package)."""
    from ._trust_guard import entry_point_problem

    if not verdict.approved:
        return verdict
    root = Path(str(dist.locate_file(""))).resolve()
    rows = _record_rows(_record_text(dist) or "")
    hashes = {(root / name).resolve(): (a, d) for name, a, d in rows if a}
    problem = entry_point_problem(source.module, {path: hashes[path] for path in hashes})
    if problem is None:
        return verdict
    return Verdict(verdict.distribution, "changed", (f"entry point {source.plugin_id}: {problem}",))


def exclusion_rule(
    lock: TrustLock,
    mode: TrustMode,
    *,
    base: ExclusionRule | None = None,
    warn: Callable[[str], None] | None = None,
    distributions: Callable[[str], importlib.metadata.Distribution | None] = find_distribution,
) -> ExclusionRule:
    """A rule for ``survey()``: ``base``'s verdict first, then the lock's.

    A plugin whose distribution is not approved is refused (``mode="refuse"``:
    excluded, so never imported, with the reason) or reported through ``warn``
    (``mode="warn"``; default: a warning on the ``mofa_kernel`` logger) and
    allowed. The distribution checked is the one whose metadata folder declared
    the entry point (``distributions`` looks it up by name only for a source
    without a folder), and its entry point's module must resolve to a file its
    RECORD hashes. Each distribution is verified, and warned about, once per
    rule. In refuse mode the verdicts also go to the import guard
    (:mod:`mofa_kernel._trust_guard`), which then imports the approved modules
    from the bytes it verified and refuses the rest.
    """
    verdicts: dict[tuple[str, str], Verdict] = {}
    warned: set[str] = set()
    report = warn if warn is not None else _logger.warning

    def verdict_for(source: PluginSource) -> Verdict:
        name = source.distribution
        if name is None:
            return Verdict("(no distribution)", "unverifiable", ("plugin has no distribution",))
        key = (str(source.metadata_dir or _normalize(name)), source.module)
        if key not in verdicts:
            dist = _distribution_of(source, distributions)
            if dist is None:
                verdicts[key] = Verdict(name, "unverifiable", ("not installed",))
            else:
                verdict = _entry_point_verdict(source, dist, lock.verify(dist))
                if mode == "refuse":
                    _judge(source, dist, verdict)
                verdicts[key] = verdict
        return verdicts[key]

    def rule(source: PluginSource) -> str | None:
        reason = base(source) if base is not None else None
        if reason is not None:
            return reason
        verdict = verdict_for(source)
        if verdict.approved:
            return None
        if mode == "refuse":
            return f"refused by the trust lock: {verdict.describe()}"
        key = _normalize(verdict.distribution)
        if key not in warned:
            warned.add(key)
            report(f"plugin {source.plugin_id!r} from {verdict.describe()}")
        return None

    return rule


def approve_all(lock: TrustLock, names: Iterable[str]) -> tuple[TrustLock, list[str]]:
    """Approve every installed distribution in ``names``; the new lock and one line per
    distribution that could not be approved."""
    problems: list[str] = []
    for name in names:
        dist = find_distribution(name)
        if dist is None:
            problems.append(f"{name}: not installed")
            continue
        try:
            lock = lock.approve(dist)
        except PluginConfigError as exc:
            problems.extend(str(exc).splitlines())
    return lock, problems
