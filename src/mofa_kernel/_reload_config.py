"""When and how plugins are hot-reloaded: :class:`ReloadStrategy` and :class:`HotReloadConfig`."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Final

import attrs

__all__ = ["HotReloadConfig", "ReloadStrategy"]

_STRATEGY_VARIANTS: Final = {
    "Immediate": "IMMEDIATE",
    "Debounced": "DEBOUNCED",
    "Manual": "MANUAL",
    "OnIdle": "ON_IDLE",
}


def _non_negative_seconds(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be finite and not negative, got {value!r}")


def _seconds(value: float) -> float:
    # Whole seconds read as floats; anything else is left for the validator to refuse.
    return float(value) if type(value) is int else value


def _delay(value: float | None) -> float | None:
    return None if value is None else _seconds(value)


def _check_strategy(instance: ReloadStrategy, attribute: object, value: str) -> None:
    if value not in _STRATEGY_VARIANTS:
        raise ValueError(
            f"unknown reload strategy {value!r}, expected one of {', '.join(_STRATEGY_VARIANTS)}"
        )
    if (value == "Debounced") != (instance.delay is not None):
        raise TypeError("only ReloadStrategy.debounced(seconds) carries a delay")
    if instance.delay is not None:
        _non_negative_seconds(instance, attrs.fields(ReloadStrategy).delay, instance.delay)


@attrs.frozen(repr=False)
class ReloadStrategy:
    """When a detected change is applied.

    ``IMMEDIATE`` reloads at once; ``debounced(s)`` waits for ``s`` seconds of
    quiet; ``MANUAL`` only marks the plugin stale until a reload is requested;
    ``ON_IDLE`` waits until the plugin has no execute in flight.
    """

    variant: str = attrs.field(validator=_check_strategy)
    #: Seconds of quiet for ``Debounced``, else ``None``.
    delay: float | None = attrs.field(default=None, converter=_delay)

    IMMEDIATE: ClassVar[ReloadStrategy]
    MANUAL: ClassVar[ReloadStrategy]
    ON_IDLE: ClassVar[ReloadStrategy]

    @classmethod
    def debounced(cls, seconds: float) -> ReloadStrategy:
        """Reload once changes have stopped for ``seconds``."""
        return cls("Debounced", seconds)

    def __repr__(self) -> str:
        if self.variant == "Debounced":
            return f"ReloadStrategy.debounced({self.delay!r})"
        return f"ReloadStrategy.{_STRATEGY_VARIANTS[self.variant]}"


ReloadStrategy.IMMEDIATE = ReloadStrategy("Immediate")
ReloadStrategy.MANUAL = ReloadStrategy("Manual")
ReloadStrategy.ON_IDLE = ReloadStrategy("OnIdle")


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


@attrs.frozen
class HotReloadConfig:
    """Hot-reload settings, with the seed's defaults.

    ``max_reload_attempts`` bounds the attempts at one content of a plugin's
    files; ``reload_cooldown`` is the wait in seconds before retrying after a
    failed attempt (a successful reload is never delayed by it).
    """

    strategy: ReloadStrategy = attrs.field(
        factory=lambda: ReloadStrategy.debounced(1.0),
        validator=attrs.validators.instance_of(ReloadStrategy),
    )
    preserve_state: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    auto_rollback: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    max_reload_attempts: int = attrs.field(default=3, validator=_count)
    reload_cooldown: float = attrs.field(
        default=5.0, converter=_seconds, validator=_non_negative_seconds
    )

    def with_strategy(self, strategy: ReloadStrategy) -> HotReloadConfig:
        return attrs.evolve(self, strategy=strategy)

    def with_preserve_state(self, preserve: bool) -> HotReloadConfig:
        return attrs.evolve(self, preserve_state=preserve)

    def with_auto_rollback(self, auto_rollback: bool) -> HotReloadConfig:
        return attrs.evolve(self, auto_rollback=auto_rollback)

    def with_max_attempts(self, max_attempts: int) -> HotReloadConfig:
        return attrs.evolve(self, max_reload_attempts=max_attempts)

    def with_reload_cooldown(self, cooldown: float) -> HotReloadConfig:
        return attrs.evolve(self, reload_cooldown=cooldown)
