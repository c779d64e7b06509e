"""ReloadStrategy and HotReloadConfig: the seed's defaults, builders and validation."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mofa_kernel import HotReloadConfig, ReloadStrategy


class TestReloadStrategy:
    @pytest.mark.parametrize(
        ("strategy", "variant", "text"),
        [
            (ReloadStrategy.IMMEDIATE, "Immediate", "ReloadStrategy.IMMEDIATE"),
            (ReloadStrategy.MANUAL, "Manual", "ReloadStrategy.MANUAL"),
            (ReloadStrategy.ON_IDLE, "OnIdle", "ReloadStrategy.ON_IDLE"),
        ],
    )
    def test_unit_members(self, strategy: ReloadStrategy, variant: str, text: str) -> None:
        assert strategy.variant == variant
        assert strategy.delay is None
        assert repr(strategy) == text

    def test_debounced_carries_seconds(self) -> None:
        strategy = ReloadStrategy.debounced(0.5)
        assert strategy.variant == "Debounced"
        assert strategy.delay == 0.5
        assert repr(strategy) == "ReloadStrategy.debounced(0.5)"

    def test_whole_seconds_become_float(self) -> None:
        strategy = ReloadStrategy.debounced(2)
        assert strategy.delay == 2.0
        assert type(strategy.delay) is float

    def test_equality(self) -> None:
        assert ReloadStrategy.debounced(1) == ReloadStrategy.debounced(1.0)
        assert ReloadStrategy.debounced(1.0) != ReloadStrategy.debounced(2.0)
        assert ReloadStrategy("Manual") == ReloadStrategy.MANUAL

    def test_zero_delay_is_allowed(self) -> None:
        assert ReloadStrategy.debounced(0).delay == 0.0

    @pytest.mark.parametrize(
        ("build", "error", "match"),
        [
            (lambda: ReloadStrategy("Later"), ValueError, "unknown reload strategy 'Later'"),
            (lambda: ReloadStrategy("Debounced"), TypeError, "carries a delay"),
            (lambda: ReloadStrategy("Immediate", 1.0), TypeError, "carries a delay"),
            (lambda: ReloadStrategy.debounced(-1), ValueError, "not negative"),
            (lambda: ReloadStrategy.debounced(math.nan), ValueError, "finite"),
            (lambda: ReloadStrategy.debounced(math.inf), ValueError, "finite"),
            (lambda: ReloadStrategy.debounced(True), TypeError, "number of seconds"),
            (lambda: ReloadStrategy.debounced("1"), TypeError, "number of seconds"),
        ],
    )
    def test_validation(self, build: Callable[[], Any], error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            build()

    @pytest.mark.parametrize("strategy", [ReloadStrategy.ON_IDLE, ReloadStrategy.debounced(3)])
    def test_pickle(self, strategy: ReloadStrategy) -> None:
        assert pickle.loads(pickle.dumps(strategy)) == strategy  # noqa: S301 - our own object


class TestHotReloadConfig:
    def test_seed_defaults(self) -> None:
        config = HotReloadConfig()
        assert config.strategy == ReloadStrategy.debounced(1.0)
        assert config.preserve_state is True
        assert config.auto_rollback is True
        assert config.max_reload_attempts == 3
        assert config.reload_cooldown == 5.0

    @pytest.mark.parametrize(
        ("build", "field", "value"),
        [
            (lambda c: c.with_strategy(ReloadStrategy.MANUAL), "strategy", ReloadStrategy.MANUAL),
            (lambda c: c.with_preserve_state(False), "preserve_state", False),
            (lambda c: c.with_auto_rollback(False), "auto_rollback", False),
            (lambda c: c.with_max_attempts(7), "max_reload_attempts", 7),
            (lambda c: c.with_reload_cooldown(0.5), "reload_cooldown", 0.5),
        ],
    )
    def test_builders_return_a_new_value(
        self, build: Callable[[HotReloadConfig], HotReloadConfig], field: str, value: object
    ) -> None:
        original = HotReloadConfig()
        built = build(original)
        assert built is not original
        assert getattr(built, field) == value
        assert original == HotReloadConfig()
        changed = {f.name for f in attrs.fields(HotReloadConfig)} - {field}
        assert all(getattr(built, name) == getattr(original, name) for name in changed)

    def test_builders_chain(self) -> None:
        config = (
            HotReloadConfig()
            .with_strategy(ReloadStrategy.IMMEDIATE)
            .with_max_attempts(1)
            .with_reload_cooldown(0)
        )
        assert config == HotReloadConfig(
            strategy=ReloadStrategy.IMMEDIATE, max_reload_attempts=1, reload_cooldown=0.0
        )

    def test_frozen(self) -> None:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            HotReloadConfig().max_reload_attempts = 1  # type: ignore[misc]

    def test_cooldown_whole_seconds_become_float(self) -> None:
        assert type(HotReloadConfig(reload_cooldown=2).reload_cooldown) is float

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"strategy": "manual"}, TypeError, "strategy"),
            ({"preserve_state": 1}, TypeError, "preserve_state"),
            ({"auto_rollback": None}, TypeError, "auto_rollback"),
            ({"max_reload_attempts": -1}, ValueError, "max_reload_attempts must not be negative"),
            ({"max_reload_attempts": 1.5}, TypeError, "max_reload_attempts must be an integer"),
            ({"max_reload_attempts": True}, TypeError, "max_reload_attempts must be an integer"),
            ({"reload_cooldown": -0.1}, ValueError, "reload_cooldown must be finite"),
            ({"reload_cooldown": math.inf}, ValueError, "reload_cooldown must be finite"),
            ({"reload_cooldown": "5"}, TypeError, "reload_cooldown must be a number"),
        ],
    )
    def test_validation(self, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            HotReloadConfig(**kwargs)

    def test_builders_validate_too(self) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            HotReloadConfig().with_max_attempts(-2)
