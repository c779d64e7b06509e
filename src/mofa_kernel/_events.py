"""The kernel's events: :class:`PluginEvent` and :class:`ReloadEvent` with their variants.

Each variant is a frozen attrs class with keyword fields named as in the seed,
a subclass of its family, and reachable as an attribute of it::

    PluginEvent.StateChanged(plugin_id="calc", old_state=..., new_state=...)

Paths are :class:`pathlib.Path`, durations are seconds as ``float``, and
``Custom.data`` is ``bytes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, TypeAlias

import attrs

from ._public import publish
from ._types import PluginState

__all__ = ["KernelEvent", "PluginEvent", "ReloadEvent"]


_str = attrs.validators.instance_of(str)


def _path(value: str | Path) -> Path:
    return Path(value)


def _bytes(value: bytes | bytearray | memoryview) -> bytes:
    # bytes(5) would be five zero bytes and bytes("x") needs an encoding: take binary data only.
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(value).__name__}")
    return bytes(value)


def _duration(value: float) -> float:
    # Seconds as a float; bool and str are refused rather than read as numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"duration must be a number of seconds, got {value!r}")
    return float(value)


def _refuse_family(self: object) -> None:
    if type(self) in (PluginEvent, ReloadEvent):
        name = type(self).__name__
        raise TypeError(f"{name} is a family of events: build one of its variants")


@attrs.frozen
class PluginEvent:
    """Something that happened to a plugin's lifecycle. Use one of its variants."""

    PluginLoaded: ClassVar[type[_PluginLoaded]]
    PluginUnloaded: ClassVar[type[_PluginUnloaded]]
    StateChanged: ClassVar[type[_StateChanged]]
    PluginError: ClassVar[type[_PluginError]]
    Custom: ClassVar[type[_Custom]]

    #: The variant's name, as used on the wire (``{"StateChanged": {...}}``).
    variant: ClassVar[str] = ""

    __attrs_pre_init__ = _refuse_family


@attrs.frozen(kw_only=True)
class _PluginLoaded(PluginEvent):
    """A plugin finished loading."""

    variant: ClassVar[str] = "PluginLoaded"
    plugin_id: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class _PluginUnloaded(PluginEvent):
    """A plugin was unloaded."""

    variant: ClassVar[str] = "PluginUnloaded"
    plugin_id: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class _StateChanged(PluginEvent):
    """A plugin moved from ``old_state`` to ``new_state``."""

    variant: ClassVar[str] = "StateChanged"
    plugin_id: str = attrs.field(validator=_str)
    old_state: PluginState = attrs.field(validator=attrs.validators.instance_of(PluginState))
    new_state: PluginState = attrs.field(validator=attrs.validators.instance_of(PluginState))


@attrs.frozen(kw_only=True)
class _PluginError(PluginEvent):
    """A plugin failed; ``error`` says where and why."""

    variant: ClassVar[str] = "PluginError"
    plugin_id: str = attrs.field(validator=_str)
    error: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class _Custom(PluginEvent):
    """A plugin-defined event: a type name and opaque bytes."""

    variant: ClassVar[str] = "Custom"
    plugin_id: str = attrs.field(validator=_str)
    event_type: str = attrs.field(validator=_str)
    data: bytes = attrs.field(default=b"", converter=_bytes)


@attrs.frozen
class ReloadEvent:
    """Something that happened while hot-reloading. Use one of its variants."""

    ReloadStarted: ClassVar[type[_ReloadStarted]]
    ReloadCompleted: ClassVar[type[_ReloadCompleted]]
    ReloadFailed: ClassVar[type[_ReloadFailed]]
    RollbackTriggered: ClassVar[type[_RollbackTriggered]]
    PluginDiscovered: ClassVar[type[_PluginDiscovered]]
    PluginRemoved: ClassVar[type[_PluginRemoved]]
    StatePreserved: ClassVar[type[_StatePreserved]]
    StateRestored: ClassVar[type[_StateRestored]]

    #: The variant's name, as used on the wire (``{"ReloadCompleted": {...}}``).
    variant: ClassVar[str] = ""

    __attrs_pre_init__ = _refuse_family


@attrs.frozen(kw_only=True)
class _ReloadStarted(ReloadEvent):
    """A reload of ``plugin_id`` began, triggered by a change at ``path``."""

    variant: ClassVar[str] = "ReloadStarted"
    plugin_id: str = attrs.field(validator=_str)
    path: Path = attrs.field(converter=_path)


@attrs.frozen(kw_only=True)
class _ReloadCompleted(ReloadEvent):
    """A reload finished; ``success`` is whether the new code now serves."""

    variant: ClassVar[str] = "ReloadCompleted"
    plugin_id: str = attrs.field(validator=_str)
    path: Path = attrs.field(converter=_path)
    success: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    duration: float = attrs.field(converter=_duration)


@attrs.frozen(kw_only=True)
class _ReloadFailed(ReloadEvent):
    """A reload attempt failed; ``error`` names the file and line where known."""

    variant: ClassVar[str] = "ReloadFailed"
    plugin_id: str = attrs.field(validator=_str)
    path: Path = attrs.field(converter=_path)
    error: str = attrs.field(validator=_str)
    attempt: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen(kw_only=True)
class _RollbackTriggered(ReloadEvent):
    """The old code and instance were put back after a failed reload."""

    variant: ClassVar[str] = "RollbackTriggered"
    plugin_id: str = attrs.field(validator=_str)
    reason: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class _PluginDiscovered(ReloadEvent):
    """A plugin distribution appeared while the host runs."""

    variant: ClassVar[str] = "PluginDiscovered"
    path: Path = attrs.field(converter=_path)


@attrs.frozen(kw_only=True)
class _PluginRemoved(ReloadEvent):
    """A plugin distribution disappeared while the host runs."""

    variant: ClassVar[str] = "PluginRemoved"
    plugin_id: str = attrs.field(validator=_str)
    path: Path = attrs.field(converter=_path)


@attrs.frozen(kw_only=True)
class _StatePreserved(ReloadEvent):
    """The old instance's state was saved for the new one."""

    variant: ClassVar[str] = "StatePreserved"
    plugin_id: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class _StateRestored(ReloadEvent):
    """State was restored into the instance that now serves."""

    variant: ClassVar[str] = "StateRestored"
    plugin_id: str = attrs.field(validator=_str)


#: Every event the kernel's stream carries.
KernelEvent: TypeAlias = PluginEvent | ReloadEvent


def _attach(family: type, variants: tuple[type, ...]) -> None:
    # Public names read ``mofa_kernel.PluginEvent.StateChanged`` in reprs, docs and pickles.
    for cls in variants:
        name = cls.__name__.lstrip("_")
        cls.__name__ = name
        cls.__qualname__ = f"{family.__name__}.{name}"
        publish(cls)
        setattr(family, name, cls)


_attach(PluginEvent, (_PluginLoaded, _PluginUnloaded, _StateChanged, _PluginError, _Custom))
_attach(
    ReloadEvent,
    (
        _ReloadStarted,
        _ReloadCompleted,
        _ReloadFailed,
        _RollbackTriggered,
        _PluginDiscovered,
        _PluginRemoved,
        _StatePreserved,
        _StateRestored,
    ),
)

PLUGIN_EVENT_VARIANTS: dict[str, type[PluginEvent]] = {
    cls.variant: cls
    for cls in (_PluginLoaded, _PluginUnloaded, _StateChanged, _PluginError, _Custom)
}
RELOAD_EVENT_VARIANTS: dict[str, type[ReloadEvent]] = {
    cls.variant: cls
    for cls in (
        _ReloadStarted,
        _ReloadCompleted,
        _ReloadFailed,
        _RollbackTriggered,
        _PluginDiscovered,
        _PluginRemoved,
        _StatePreserved,
        _StateRestored,
    )
}
