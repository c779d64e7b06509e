"""Plugin kinds, lifecycle states and priorities: the seed's three enums.

``PluginType`` and ``PluginState`` carry a payload in one variant each
(``Custom(name)`` and ``Error(message)``), so they are small frozen attrs
classes with the unit variants as class attributes, rather than ``enum.Enum``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import attrs

__all__ = ["PluginPriority", "PluginState", "PluginType"]

#: Serde variant name -> Python attribute name, in the seed's declaration order.
_TYPE_VARIANTS: Final = {
    "LLM": "LLM",
    "Tool": "TOOL",
    "Storage": "STORAGE",
    "Memory": "MEMORY",
    "VectorDB": "VECTOR_DB",
    "Communication": "COMMUNICATION",
    "Monitor": "MONITOR",
    "Skill": "SKILL",
}

_STATE_VARIANTS: Final = {
    "Unloaded": "UNLOADED",
    "Loading": "LOADING",
    "Loaded": "LOADED",
    "Running": "RUNNING",
    "Paused": "PAUSED",
}


def _variant_check(
    kind: str, units: Mapping[str, str], payload_variant: str, payload: str, constructor: str
) -> Callable[[Any, object, str], None]:
    """An attrs validator for a seed enum with unit variants and one newtype variant
    whose payload is the string attribute ``payload``."""
    spoken = kind.replace("Plugin", "plugin ").lower()  # "PluginType" -> "plugin type"
    payload_words = payload.replace("_", " ")

    def check(instance: Any, attribute: object, value: str) -> None:
        carried = getattr(instance, payload)
        if value == payload_variant:
            if not isinstance(carried, str):
                raise TypeError(f"{constructor} needs a string {payload_words.split()[-1]}")
        elif value in units:
            if carried is not None:
                raise TypeError(f"{kind} {value!r} carries no {payload_words}")
        else:
            expected = ", ".join([*units, payload_variant])
            raise ValueError(f"unknown {spoken} {value!r}, expected one of {expected}")

    return check


_check_type_variant = _variant_check(
    "PluginType", _TYPE_VARIANTS, "Custom", "custom_name", "PluginType.custom(name)"
)


@attrs.frozen(repr=False, order=False)
class PluginType:
    """What a plugin is for: one of eight built-in kinds, or a custom one.

    The built-in kinds are class attributes: ``LLM``, ``TOOL``, ``STORAGE``,
    ``MEMORY``, ``VECTOR_DB``, ``COMMUNICATION``, ``MONITOR`` and ``SKILL``.

    >>> PluginType.TOOL
    PluginType.TOOL
    >>> PluginType.custom("my-kind").custom_name
    'my-kind'
    """

    #: The serde variant name: ``"LLM"``, ``"Tool"``, ..., or ``"Custom"``.
    variant: str = attrs.field(validator=_check_type_variant)
    #: The custom kind's name for ``Custom``, else ``None``.
    custom_name: str | None = None

    LLM: ClassVar[PluginType]
    TOOL: ClassVar[PluginType]
    STORAGE: ClassVar[PluginType]
    MEMORY: ClassVar[PluginType]
    VECTOR_DB: ClassVar[PluginType]
    COMMUNICATION: ClassVar[PluginType]
    MONITOR: ClassVar[PluginType]
    SKILL: ClassVar[PluginType]

    @classmethod
    def custom(cls, name: str) -> PluginType:
        """A custom plugin kind called ``name``."""
        return cls("Custom", name)

    @staticmethod
    def builtins() -> tuple[PluginType, ...]:
        """The eight built-in kinds, in the seed's order."""
        return tuple(getattr(PluginType, attr) for attr in _TYPE_VARIANTS.values())

    @classmethod
    def parse(cls, text: str) -> PluginType:
        """Read a kind from a person: a variant or attribute name in any case, else custom.

        ``"tool"``, ``"Tool"`` and ``"TOOL"`` give ``PluginType.TOOL``;
        ``"vector_db"`` and ``"VectorDB"`` give ``PluginType.VECTOR_DB``;
        anything else is ``PluginType.custom(text)``.
        """
        folded = text.replace("_", "").replace("-", "").lower()
        for variant in _TYPE_VARIANTS:
            if variant.lower() == folded:
                return cls(variant)
        return cls("Custom", text)

    @property
    def is_custom(self) -> bool:
        """Whether this is a custom kind."""
        return self.variant == "Custom"

    def __repr__(self) -> str:
        if self.variant == "Custom":
            return f"PluginType.custom({self.custom_name!r})"
        return f"PluginType.{_TYPE_VARIANTS[self.variant]}"

    def __str__(self) -> str:
        return self.custom_name if self.custom_name is not None else self.variant


for _variant, _attr in _TYPE_VARIANTS.items():
    setattr(PluginType, _attr, PluginType(_variant))


_check_state_variant = _variant_check(
    "PluginState", _STATE_VARIANTS, "Error", "message", "PluginState.error(message)"
)


@attrs.frozen(repr=False, order=False)
class PluginState:
    """Where a plugin is in its lifecycle.

    The states without a payload are class attributes: ``UNLOADED``,
    ``LOADING``, ``LOADED``, ``RUNNING`` and ``PAUSED``. A failed plugin is in
    ``PluginState.error(message)``.

    >>> PluginState.RUNNING
    PluginState.RUNNING
    >>> PluginState.error("boom").message
    'boom'
    """

    #: The serde variant name: ``"Unloaded"``, ..., ``"Paused"`` or ``"Error"``.
    variant: str = attrs.field(validator=_check_state_variant)
    #: The error message for ``Error``, else ``None``.
    message: str | None = None

    UNLOADED: ClassVar[PluginState]
    LOADING: ClassVar[PluginState]
    LOADED: ClassVar[PluginState]
    RUNNING: ClassVar[PluginState]
    PAUSED: ClassVar[PluginState]

    @classmethod
    def error(cls, message: str) -> PluginState:
        """The error state, carrying what went wrong."""
        return cls("Error", message)

    @property
    def is_error(self) -> bool:
        """Whether this is the error state."""
        return self.variant == "Error"

    def __repr__(self) -> str:
        if self.variant == "Error":
            return f"PluginState.error({self.message!r})"
        return f"PluginState.{_STATE_VARIANTS[self.variant]}"

    def __str__(self) -> str:
        if self.variant == "Error":
            return f"Error({self.message})"
        return self.variant


for _variant, _attr in _STATE_VARIANTS.items():
    setattr(PluginState, _attr, PluginState(_variant))

#: The five states without a payload, in lifecycle order.
PLAIN_STATES: Final[tuple[PluginState, ...]] = tuple(
    getattr(PluginState, attr) for attr in _STATE_VARIANTS.values()
)


class PluginPriority(enum.IntEnum):
    """Start-order priority among plugins that are free to start together.

    On the wire it is the variant name (``"Normal"``), never the number.
    """

    LOW = 0
    NORMAL = 50
    HIGH = 100
    CRITICAL = 200

    @property
    def variant(self) -> str:
        """The serde variant name (``"Low"``, ``"Normal"``, ``"High"`` or ``"Critical"``)."""
        return self.name.capitalize()
