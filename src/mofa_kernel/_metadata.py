"""A plugin's identity card (:class:`PluginMetadata`) and its settings (:class:`PluginConfig`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar, overload

import attrs

from ._errors import PluginConfigError
from ._types import PluginPriority, PluginType

__all__ = ["JSONValue", "PluginConfig", "PluginMetadata", "to_json_value"]

#: A value that JSON can carry: what ``serde_json::Value`` holds in the seed.
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

_T = TypeVar("_T")
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError("expected a sequence of strings, got a single string")
    return tuple(values)


_strings = attrs.validators.deep_iterable(
    member_validator=attrs.validators.instance_of(str),
    iterable_validator=attrs.validators.instance_of(tuple),
)


@attrs.frozen
class PluginMetadata:
    """Who a plugin is: id, name, kind, version, priority, dependencies, capabilities.

    Immutable; the ``with_*`` builders return a new value, as the seed's do.

    >>> meta = PluginMetadata("calc", "Calculator", PluginType.TOOL).with_dependency("memory")
    >>> meta.dependencies
    ('memory',)
    """

    #: The plugin id: unique in one kernel, and the entry point's name.
    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    #: A name for people.
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    #: What the plugin is for.
    plugin_type: PluginType = attrs.field(validator=attrs.validators.instance_of(PluginType))
    #: The plugin's own version.
    version: str = attrs.field(default="1.0.0", validator=attrs.validators.instance_of(str))
    #: One or two sentences for listings.
    description: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    #: Start order among plugins that are free to start together (higher first).
    priority: PluginPriority = attrs.field(default=PluginPriority.NORMAL, converter=PluginPriority)
    #: Ids of the plugins that must be running before this one starts.
    dependencies: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_strings
    )
    #: Free-form tags saying what the plugin can do.
    capabilities: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_strings
    )
    #: Who wrote it, if known.
    author: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )

    def with_version(self, version: str) -> PluginMetadata:
        """A copy with ``version`` set."""
        return attrs.evolve(self, version=version)

    def with_description(self, description: str) -> PluginMetadata:
        """A copy with ``description`` set."""
        return attrs.evolve(self, description=description)

    def with_priority(self, priority: PluginPriority) -> PluginMetadata:
        """A copy with ``priority`` set."""
        return attrs.evolve(self, priority=priority)

    def with_dependency(self, dep_id: str) -> PluginMetadata:
        """A copy that also depends on ``dep_id``."""
        return attrs.evolve(self, dependencies=(*self.dependencies, dep_id))

    def with_capability(self, capability: str) -> PluginMetadata:
        """A copy that also has ``capability``."""
        return attrs.evolve(self, capabilities=(*self.capabilities, capability))

    def with_author(self, author: str | None) -> PluginMetadata:
        """A copy with ``author`` set."""
        return attrs.evolve(self, author=author)


def to_json_value(value: object, *, path: str = "$") -> JSONValue:
    """Return ``value`` as plain JSON data, or raise :class:`PluginConfigError`.

    Tuples become lists; NaN and infinities become ``None``, as
    ``serde_json::to_value`` makes them ``null``. Mapping keys must be strings.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PluginConfigError(f"{path}: object keys must be strings, got {key!r}")
            out[key] = to_json_value(item, path=f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, path=f"{path}[{i}]") for i, item in enumerate(value)]
    raise PluginConfigError(f"{path}: {type(value).__name__} is not JSON data")


def _settings(value: Mapping[str, Any]) -> dict[str, JSONValue]:
    data = to_json_value(value, path="settings")
    if not isinstance(data, dict):
        raise PluginConfigError("settings: expected a table of settings")
    return data


_JSON_KIND = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _kind(value: object) -> str:
    return _JSON_KIND.get(type(value), type(value).__name__)


@attrs.define
class PluginConfig:
    """A plugin's settings (free-form JSON data) and its two switches.

    Mutable, as the seed's ``&mut self`` setters are. The typed getters return
    ``None`` (or ``default``) when the key is missing and raise
    :class:`PluginConfigError` when it holds the wrong type, so callers can
    tell the two apart.

    >>> config = PluginConfig({"port": 8080})
    >>> config.get_int("port")
    8080
    >>> config.get_int("host") is None
    True
    """

    #: The plugin's own settings, as JSON data (``[plugins.<id>.settings]`` in TOML).
    settings: dict[str, JSONValue] = attrs.field(factory=dict, converter=_settings)
    #: Whether the plugin is loaded at all.
    enabled: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    #: Whether ``start_all`` starts it.
    auto_start: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def get(self, key: str, default: JSONValue = None) -> JSONValue:
        """The raw JSON value of ``key``, or ``default`` when missing."""
        return self.settings.get(key, default)

    def set(self, key: str, value: object) -> None:
        """Store ``value`` (JSON data) under ``key``; anything else raises PluginConfigError."""
        if not isinstance(key, str):
            raise PluginConfigError(f"settings: keys must be strings, got {key!r}")
        self.settings[key] = to_json_value(value, path=f"settings.{key}")

    def contains(self, key: str) -> bool:
        """Whether ``key`` is set (to any value, ``None`` included)."""
        return key in self.settings

    @overload
    def _typed(self, key: str, kinds: type[_T], what: str, default: None) -> _T | None: ...
    @overload
    def _typed(self, key: str, kinds: type[_T], what: str, default: _T) -> _T: ...
    def _typed(self, key: str, kinds: type[_T], what: str, default: _T | None) -> _T | None:
        if key not in self.settings:
            return default
        value = self.settings[key]
        # bool is an int in Python but not in JSON.
        if isinstance(value, kinds) and not (isinstance(value, bool) and kinds is not bool):
            return value
        raise PluginConfigError(f"settings.{key}: expected {what}, got {_kind(value)}")

    def get_string(self, key: str, default: str | None = None) -> str | None:
        """The string under ``key``; ``default`` if missing."""
        return self._typed(key, str, "a string", default)

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        """The boolean under ``key``; ``default`` if missing."""
        return self._typed(key, bool, "a boolean", default)

    def get_int(self, key: str, default: int | None = None) -> int | None:
        """The integer under ``key`` (a boolean is not one); ``default`` if missing."""
        return self._typed(key, int, "an integer", default)

    def get_i64(self, key: str, default: int | None = None) -> int | None:
        """Like :meth:`get_int`, also refusing integers outside the signed 64-bit range."""
        value = self._typed(key, int, "an integer", default)
        if value is not None and key in self.settings and not _I64_MIN <= value <= _I64_MAX:
            raise PluginConfigError(f"settings.{key}: {value} does not fit a 64-bit integer")
        return value

    def get_float(self, key: str, default: float | None = None) -> float | None:
        """The number under ``key``, as a float (integers are accepted); ``default`` if missing."""
        if key not in self.settings:
            return default
        value = self.settings[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise PluginConfigError(f"settings.{key}: expected a number, got {_kind(value)}")

    def get_list(self, key: str, default: list[JSONValue] | None = None) -> list[JSONValue] | None:
        """The array under ``key``; ``default`` if missing."""
        return self._typed(key, list, "an array", default)

    def get_dict(
        self, key: str, default: dict[str, JSONValue] | None = None
    ) -> dict[str, JSONValue] | None:
        """The object under ``key``; ``default`` if missing."""
        return self._typed(key, dict, "an object", default)
