"""The kernel's TOML configuration and the rules that select which discovered plugins load.

:func:`load_settings` reads ``mofa.toml`` (or ``--config FILE``, or
``MOFA_CONFIG``) into :class:`KernelSettings` through a strict cattrs
converter: an unknown key or a value of the wrong type is reported with its
dotted path, every problem at once, one line each, as a
:class:`~mofa_kernel.PluginConfigError`. :class:`Selection` applies the
configuration and the environment variables to discovered plugins.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args

import attrs
import cattrs
from cattrs.errors import (
    BaseValidationError,
    ForbiddenExtraKeysError,
)
from cattrs.gen import make_dict_structure_fn, override

from ._errors import PluginConfigError
from ._metadata import JSONValue, PluginConfig
from ._reload_config import HotReloadConfig, ReloadStrategy
from ._source import PluginSource, Selection
from ._source import toml_key as _key
from ._toml_limits import check_depth, read_config_bytes
from ._wire._errors import error_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    # The dev environment (3.11+) has no tomli, so mypy (checking as 3.10) cannot see it.
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "CONFIG_FILE_NAME",
    "HotReloadSection",
    "KernelSection",
    "KernelSettings",
    "PluginSection",
    "Selection",
    "StrategyName",
    "load_settings",
    "structure_settings",
]

#: The configuration file looked for in the working directory.
CONFIG_FILE_NAME: Final = "mofa.toml"
ENV_CONFIG: Final = "MOFA_CONFIG"

#: The reload strategies as spelled in the configuration file.
StrategyName = Literal["immediate", "debounced", "manual", "on_idle"]
_STRATEGY_NAMES: Final[tuple[str, ...]] = get_args(StrategyName)
#: What the trust lock does with a plugin whose distribution is not as approved.
TrustModeName = Literal["off", "warn", "refuse"]
_TRUST_MODES: Final[tuple[str, ...]] = get_args(TrustModeName)
#: Where a plugin runs: in the host's process, or in a worker process of its own.
IsolationName = Literal["inline", "process"]
_ISOLATIONS: Final[tuple[str, ...]] = get_args(IsolationName)
_TOML_POSITION: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")

_T = TypeVar("_T")


@attrs.frozen
class KernelSection:
    """The ``[kernel]`` table: identity, autoload, allow/deny lists, default timeout."""

    agent_id: str = "default"
    #: Discover entry points at all.
    autoload: bool = True
    #: Plugin ids or distribution names that may load; empty means all.
    allow: tuple[str, ...] = ()
    #: Plugin ids or distribution names that never load.
    deny: tuple[str, ...] = ()
    #: Seconds allowed for every lifecycle call and execute.
    timeout: float = 30.0
    #: A plugin call that blocks the event loop longer than this many seconds is a
    #: fault; 0 switches the watch off.
    block_limit: float = 1.0
    #: The trust lock: "off", or "warn" about / "refuse" plugins whose distribution is
    #: not approved in ``trust_file`` as it is installed now.
    trust: TrustModeName = "off"
    #: The lock file, relative to the configuration file's folder (else the working one).
    trust_file: str = "mofa-trust.json"
    #: Where plugins run unless their own table says: "inline" or "process".
    isolation: IsolationName = "inline"

    @property
    def block_limit_or_none(self) -> float | None:
        return self.block_limit or None


@attrs.frozen
class HotReloadSection:
    """The ``[hot_reload]`` table, as written; :meth:`to_config` makes the kernel's value."""

    strategy: StrategyName = "debounced"
    #: Seconds of quiet before a ``"debounced"`` reload.
    debounce: float = 1.0
    preserve_state: bool = True
    auto_rollback: bool = True
    max_reload_attempts: int = 3
    reload_cooldown: float = 5.0

    def to_config(self) -> HotReloadConfig:
        """The :class:`~mofa_kernel.HotReloadConfig` these settings describe."""
        strategies = {
            "immediate": ReloadStrategy.IMMEDIATE,
            "manual": ReloadStrategy.MANUAL,
            "on_idle": ReloadStrategy.ON_IDLE,
        }
        strategy = strategies.get(self.strategy) or ReloadStrategy.debounced(self.debounce)
        return HotReloadConfig(
            strategy=strategy,
            preserve_state=self.preserve_state,
            auto_rollback=self.auto_rollback,
            max_reload_attempts=self.max_reload_attempts,
            reload_cooldown=self.reload_cooldown,
        )


@attrs.frozen
class PluginSection:
    """One ``[plugins.ID]`` table: switches, deadline and free-form settings."""

    enabled: bool = True
    auto_start: bool = True
    #: Overrides ``kernel.timeout`` for this plugin.
    timeout: float | None = None
    settings: dict[str, JSONValue] = attrs.field(factory=dict)
    #: Overrides ``kernel.isolation`` for this plugin.
    isolation: IsolationName | None = None
    #: The worker's memory cap in MiB (process isolation only); ``None``: no cap.
    memory_limit: int | None = None
    #: Restarts after a worker's crash allowed within ``restart_window`` seconds.
    max_restarts: int = 3
    restart_window: float = 60.0

    def to_plugin_config(self) -> PluginConfig:
        """The plugin's :class:`~mofa_kernel.PluginConfig` (a fresh, mutable copy)."""
        return PluginConfig(
            settings=dict(self.settings), enabled=self.enabled, auto_start=self.auto_start
        )


@attrs.frozen
class KernelSettings:
    """The whole configuration. ``path`` is the file it was read from, if any."""

    kernel: KernelSection = attrs.Factory(KernelSection)
    hot_reload: HotReloadSection = attrs.Factory(HotReloadSection)
    plugins: dict[str, PluginSection] = attrs.Factory(dict)
    path: Path | None = None

    def plugin_section(self, plugin_id: str) -> PluginSection:
        """``[plugins.ID]``, or the defaults when the file has no such table."""
        return self.plugins.get(plugin_id) or PluginSection()

    def plugin_config(self, plugin_id: str) -> PluginConfig:
        """The :class:`~mofa_kernel.PluginConfig` for ``plugin_id``."""
        return self.plugin_section(plugin_id).to_plugin_config()

    def plugin_timeout(self, plugin_id: str) -> float:
        """The deadline in seconds for ``plugin_id``: its own, else ``kernel.timeout``."""
        own = self.plugin_section(plugin_id).timeout
        return own if own is not None else self.kernel.timeout

    def plugin_isolation(self, plugin_id: str) -> IsolationName:
        """Where ``plugin_id`` runs: its own ``isolation``, else ``kernel.isolation``."""
        own = self.plugin_section(plugin_id).isolation
        return own if own is not None else self.kernel.isolation

    def hot_reload_config(self) -> HotReloadConfig:
        return self.hot_reload.to_config()

    def trust_lock_path(self) -> Path:
        """Where the trust lock is: ``kernel.trust_file`` beside the configuration file."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / self.kernel.trust_file


class _Invalid(ValueError):
    """A value the converter refuses: ``(subpath, message)`` pairs relative to where it was."""

    def __init__(self, *problems: tuple[str, str]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _kind(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date/time"
    return type(value).__name__


def _expected(what: str, value: object) -> _Invalid:
    return _Invalid(("", f"expected {what}, got {_kind(value)}"))


def _structure_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    raise _expected("a string", value)


def _structure_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _expected("a boolean", value)


def _structure_int(value: object, _: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _expected("an integer", value)


def _structure_float(value: object, _: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _Invalid(("", "expected a finite number"))
        return float(value)
    raise _expected("a number", value)


def _seconds(value: object, _: object) -> float:
    seconds = _structure_float(value, None)
    if seconds < 0:
        raise _Invalid(("", f"expected a number of seconds >= 0, got {value}"))
    return seconds


def _positive_seconds(value: object, _: object) -> float:
    seconds = _structure_float(value, None)
    if seconds <= 0:
        raise _Invalid(("", f"expected a number of seconds > 0, got {value}"))
    return seconds


def _optional_positive_seconds(value: object, _: object) -> float | None:
    return None if value is None else _positive_seconds(value, None)


def _count(value: object, _: object) -> int:
    count = _structure_int(value, None)
    if count < 0:
        raise _Invalid(("", f"expected an integer >= 0, got {count}"))
    return count


def _one_of(names: tuple[str, ...]) -> Callable[[object, object], str]:
    """A structure hook accepting exactly one of ``names``."""
    choices = ", ".join(f'"{name}"' for name in names)

    def structure(value: object, _: object) -> str:
        if isinstance(value, str) and value in names:
            return value
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _kind(value)
        raise _Invalid(("", f"expected one of {choices}, got {shown}"))

    return structure


def _optional(
    structure: Callable[[object, object], _T],
) -> Callable[[object, object], _T | None]:
    def optional(value: object, cls: object) -> _T | None:
        return None if value is None else structure(value, cls)

    return optional


def _mebibytes(value: object, _: object) -> int:
    size = _structure_int(value, None)
    if size <= 0:
        raise _Invalid(("", f"expected a number of MiB > 0, got {size}"))
    return size


def _names(value: object, _: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _expected("an array of strings", value)
    problems = [
        (f"[{index}]", f"expected a string, got {_kind(item)}")
        for index, item in enumerate(value)
        if not isinstance(item, str)
    ]
    if problems:
        raise _Invalid(*problems)
    return tuple(value)


def _json_problems(value: object, sub: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [
            problem
            for key, item in value.items()
            for problem in _json_problems(item, f"{sub}.{_key('', key)}")
        ]
    if isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in _json_problems(item, f"{sub}[{index}]")
        ]
    if value is None or isinstance(value, (bool, int, float, str)):
        return []
    return [(sub, f"{_kind(value)} is not JSON data")]


def _plugin_settings(value: object, _: object) -> dict[str, JSONValue]:
    if not isinstance(value, dict):
        raise _expected("a table", value)
    problems = _json_problems(value, "")
    if problems:
        raise _Invalid(*problems)
    config = PluginConfig(settings=value)
    return config.settings


def _table(
    structure: Callable[[Mapping[str, Any], Any], _T],
) -> Callable[[object, Any], _T]:
    def structure_table(value: object, cls: Any) -> _T:
        if not isinstance(value, Mapping):
            raise _expected("a table", value)
        return structure(value, cls)

    return structure_table


@functools.cache
def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)

    def plugins_table(value: object, _: object) -> dict[str, PluginSection]:
        if not isinstance(value, Mapping):
            raise _expected("a table", value)
        return converter.structure(value, dict[str, PluginSection])

    overrides: dict[type, dict[str, Any]] = {
        KernelSection: {
            "allow": override(struct_hook=_names),
            "deny": override(struct_hook=_names),
            "timeout": override(struct_hook=_positive_seconds),
            "block_limit": override(struct_hook=_seconds),
            "trust": override(struct_hook=_one_of(_TRUST_MODES)),
            "isolation": override(struct_hook=_one_of(_ISOLATIONS)),
        },
        HotReloadSection: {
            "strategy": override(struct_hook=_one_of(_STRATEGY_NAMES)),
            "debounce": override(struct_hook=_seconds),
            "max_reload_attempts": override(struct_hook=_count),
            "reload_cooldown": override(struct_hook=_seconds),
        },
        PluginSection: {
            "timeout": override(struct_hook=_optional_positive_seconds),
            "settings": override(struct_hook=_plugin_settings),
            "isolation": override(struct_hook=_optional(_one_of(_ISOLATIONS))),
            "memory_limit": override(struct_hook=_optional(_mebibytes)),
            "max_restarts": override(struct_hook=_count),
            "restart_window": override(struct_hook=_positive_seconds),
        },
        KernelSettings: {
            "plugins": override(struct_hook=plugins_table),
            "path": override(omit=True),
        },
    }
    for cls, fields in overrides.items():
        generated: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=True, **fields
        )
        converter.register_structure_hook(cls, _table(generated))
    return converter


def _problem_lines(exc: BaseException, path: str) -> list[str]:
    if isinstance(exc, _Invalid):
        return [
            f"{(path + sub).lstrip('.') or '(top level)'}: {message}"
            for sub, message in exc.problems
        ]
    if isinstance(exc, ForbiddenExtraKeysError):
        from ._settings import did_you_mean

        known = (
            [f.name for f in attrs.fields(exc.cl) if f.name != "path"] if attrs.has(exc.cl) else []
        )
        return [
            f"{_key(path, key)}: unknown key{did_you_mean(key, known)}"
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, BaseValidationError):
        return error_lines(exc, path, join=lambda at, key, _: _key(at, key), leaf=_problem_lines)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return [f"{path or '(top level)'}: {message}"]


def structure_settings(data: Mapping[str, Any], *, path: Path | None = None) -> KernelSettings:
    """Turn parsed TOML data into :class:`KernelSettings`.

    Raises :class:`~mofa_kernel.PluginConfigError` listing every unknown key
    and bad value, one line each (``plugins.calculator.enabled: expected a
    boolean, got a string``), prefixed by ``path`` when given.
    """
    try:
        settings = _converter().structure(data, KernelSettings)
    except (BaseValidationError, _Invalid) as exc:
        lines = _problem_lines(exc, "")
        if path is not None:
            lines = [f"{path}: {line}" for line in lines]
        raise PluginConfigError("\n".join(lines)) from None
    return attrs.evolve(settings, path=path)


def _configured_path(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    if path is not None:
        return Path(path)
    from_env = environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env)
    default = Path(CONFIG_FILE_NAME)
    return default if default.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> KernelSettings:
    """Read the configuration: ``path``, else ``$MOFA_CONFIG``, else ``./mofa.toml``, else defaults.

    A file that was asked for (by ``path`` or ``MOFA_CONFIG``) and is missing,
    a TOML syntax error, and every bad key or value raise
    :class:`~mofa_kernel.PluginConfigError` naming the file.
    """
    config_path = _configured_path(path, os.environ if environ is None else environ)
    if config_path is None:
        return KernelSettings()
    try:
        raw = read_config_bytes(config_path)  # at most 10 MiB
    except FileNotFoundError:
        raise PluginConfigError(f"{config_path}: configuration file not found") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PluginConfigError(
            f"{config_path}: cannot read configuration file: {reason}"
        ) from None
    try:
        data = tomllib.loads(check_depth(raw.decode("utf-8"), config_path))  # <= 100 deep
    except UnicodeDecodeError as exc:
        raise PluginConfigError(f"{config_path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is not None:
            where = f"{config_path}:{position.group(1)}:{position.group(2)}"
            message = message[: position.start()]
        else:
            where = str(config_path)
        raise PluginConfigError(f"{where}: invalid TOML: {message}") from None
    return structure_settings(data, path=config_path)


def plugin_rule(
    settings: KernelSettings, environ: Mapping[str, str] | None = None
) -> Callable[[PluginSource], str | None]:
    """The rule discovery applies to every plugin before importing it: the
    :class:`Selection`, then the trust lock when ``kernel.trust`` is on.

    Raises :class:`~mofa_kernel.PluginConfigError` when the trust lock is on but
    its file is missing or malformed.
    """
    rule = Selection.from_settings(settings, environ).exclusion_reason
    mode = settings.kernel.trust
    if mode == "off":
        return rule
    from ._trust import TrustLock, exclusion_rule

    lock = TrustLock.read(settings.trust_lock_path())
    return exclusion_rule(lock, "refuse" if mode == "refuse" else "warn", base=rule)
