"""PluginMetadata (identity and builders) and PluginConfig (settings and typed getters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mofa_kernel import (
    PluginConfig,
    PluginConfigError,
    PluginMetadata,
    PluginPriority,
    PluginType,
)
from mofa_kernel._metadata import to_json_value


def calc() -> PluginMetadata:
    return PluginMetadata("calc", "Calculator", PluginType.TOOL)


class TestPluginMetadata:
    def test_seed_defaults(self) -> None:
        meta = calc()
        assert meta.id == "calc"
        assert meta.name == "Calculator"
        assert meta.plugin_type == PluginType.TOOL
        assert meta.version == "1.0.0"
        assert meta.description == ""
        assert meta.priority is PluginPriority.NORMAL
        assert meta.dependencies == ()
        assert meta.capabilities == ()
        assert meta.author is None

    def test_field_order_is_the_constructor_order(self) -> None:
        assert [f.name for f in attrs.fields(PluginMetadata)] == [
            "id",
            "name",
            "plugin_type",
            "version",
            "description",
            "priority",
            "dependencies",
            "capabilities",
            "author",
        ]

    @pytest.mark.parametrize(
        ("build", "field", "value"),
        [
            (lambda m: m.with_version("2.0.0"), "version", "2.0.0"),
            (lambda m: m.with_description("adds"), "description", "adds"),
            (lambda m: m.with_priority(PluginPriority.HIGH), "priority", PluginPriority.HIGH),
            (lambda m: m.with_dependency("memory"), "dependencies", ("memory",)),
            (lambda m: m.with_capability("math"), "capabilities", ("math",)),
            (lambda m: m.with_author("Ada"), "author", "Ada"),
        ],
    )
    def test_builders_return_a_new_value(
        self, build: Callable[[PluginMetadata], PluginMetadata], field: str, value: object
    ) -> None:
        original = calc()
        built = build(original)
        assert built is not original
        assert getattr(built, field) == value
        assert original == calc()
        assert attrs.evolve(built, **{field: getattr(original, field)}) == original

    def test_dependency_and_capability_builders_append(self) -> None:
        meta = calc().with_dependency("a").with_dependency("b").with_capability("x")
        meta = meta.with_capability("y")
        assert meta.dependencies == ("a", "b")
        assert meta.capabilities == ("x", "y")

    def test_is_frozen_and_hashable(self) -> None:
        meta = calc()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            meta.id = "other"  # type: ignore[misc]
        assert hash(meta) == hash(calc())

    def test_lists_become_tuples(self) -> None:
        meta = PluginMetadata("a", "A", PluginType.SKILL, dependencies=["x", "y"], capabilities=[])
        assert meta.dependencies == ("x", "y")
        assert meta.capabilities == ()

    def test_int_priority_becomes_the_enum(self) -> None:
        meta = PluginMetadata("a", "A", PluginType.TOOL, priority=100)
        assert meta.priority is PluginPriority.HIGH

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"id": 1}, TypeError, "'id' must be"),
            ({"name": None}, TypeError, "'name' must be"),
            ({"plugin_type": "Tool"}, TypeError, "'plugin_type' must be"),
            ({"version": 1}, TypeError, "'version' must be"),
            ({"priority": 7}, ValueError, "7 is not a valid PluginPriority"),
            ({"dependencies": "memory"}, TypeError, "got a single string"),
            ({"dependencies": ["ok", 2]}, TypeError, "'dependencies' must be"),
            ({"capabilities": [None]}, TypeError, "'capabilities' must be"),
            ({"author": 5}, TypeError, "'author' must be"),
        ],
    )
    def test_validation(self, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
        arguments: dict[str, Any] = {"id": "a", "name": "A", "plugin_type": PluginType.TOOL}
        arguments.update(kwargs)
        with pytest.raises(error, match=match):
            PluginMetadata(**arguments)

    def test_builders_validate_too(self) -> None:
        with pytest.raises(TypeError, match="'dependencies' must be"):
            calc().with_dependency(3)  # type: ignore[arg-type]


class TestPluginConfigConstruction:
    def test_seed_defaults(self) -> None:
        config = PluginConfig()
        assert config.settings == {}
        assert config.enabled is True
        assert config.auto_start is True

    def test_settings_are_not_shared_between_defaults(self) -> None:
        first, second = PluginConfig(), PluginConfig()
        first.set("k", 1)
        assert second.settings == {}

    def test_settings_are_normalised_to_json(self) -> None:
        config = PluginConfig({"pair": (1, 2), "nan": math.nan, "deep": {"t": (True, None)}})
        assert config.settings == {"pair": [1, 2], "nan": None, "deep": {"t": [True, None]}}
        assert type(config.settings["pair"]) is list

    def test_settings_are_copied(self) -> None:
        source: dict[str, Any] = {"a": 1}
        config = PluginConfig(source)
        config.set("b", 2)
        assert source == {"a": 1}

    def test_non_json_settings_are_refused_with_their_path(self) -> None:
        with pytest.raises(PluginConfigError, match=r"^settings\.db\.path: object is not JSON"):
            PluginConfig({"db": {"path": object()}})

    def test_settings_must_be_a_table(self) -> None:
        with pytest.raises(PluginConfigError, match="expected a table"):
            PluginConfig([1, 2])  # type: ignore[arg-type]

    @pytest.mark.parametrize("field", ["enabled", "auto_start"])
    def test_switches_must_be_booleans(self, field: str) -> None:
        with pytest.raises(TypeError, match=field):
            PluginConfig(**{field: 1})

    def test_is_mutable_and_compared_by_value(self) -> None:
        config = PluginConfig({"a": 1})
        config.enabled = False
        assert config == PluginConfig({"a": 1}, enabled=False)
        assert config != PluginConfig({"a": 1})


class TestPluginConfigGetters:
    config = PluginConfig(
        {
            "name": "calc",
            "flag": True,
            "port": 8080,
            "ratio": 0.5,
            "items": [1, "two"],
            "table": {"k": "v"},
            "nothing": None,
            "huge": 2**70,
        }
    )

    @pytest.mark.parametrize(
        ("getter", "key", "value"),
        [
            ("get_string", "name", "calc"),
            ("get_bool", "flag", True),
            ("get_int", "port", 8080),
            ("get_i64", "port", 8080),
            ("get_float", "ratio", 0.5),
            ("get_float", "port", 8080.0),
            ("get_list", "items", [1, "two"]),
            ("get_dict", "table", {"k": "v"}),
        ],
    )
    def test_present_with_the_right_type(self, getter: str, key: str, value: object) -> None:
        got = getattr(self.config, getter)(key)
        assert got == value
        assert type(got) is type(value)

    @pytest.mark.parametrize(
        "getter",
        ["get_string", "get_bool", "get_int", "get_i64", "get_float", "get_list", "get_dict"],
    )
    def test_missing_gives_none_or_the_default(self, getter: str) -> None:
        assert getattr(self.config, getter)("absent") is None
        sentinel = object()
        assert getattr(self.config, getter)("absent", sentinel) is sentinel

    def test_get_returns_raw_json_or_default(self) -> None:
        assert self.config.get("items") == [1, "two"]
        assert self.config.get("nothing", "fallback") is None
        assert self.config.get("absent") is None
        assert self.config.get("absent", 3) == 3

    def test_contains(self) -> None:
        assert self.config.contains("nothing")
        assert not self.config.contains("absent")

    @pytest.mark.parametrize(
        ("getter", "key", "message"),
        [
            ("get_string", "port", "settings.port: expected a string, got an integer"),
            ("get_bool", "name", "settings.name: expected a boolean, got a string"),
            ("get_int", "ratio", "settings.ratio: expected an integer, got a number"),
            ("get_int", "nothing", "settings.nothing: expected an integer, got null"),
            ("get_float", "name", "settings.name: expected a number, got a string"),
            ("get_list", "table", "settings.table: expected an array, got an object"),
            ("get_dict", "items", "settings.items: expected an object, got an array"),
        ],
    )
    def test_wrong_type_raises_naming_the_key(self, getter: str, key: str, message: str) -> None:
        with pytest.raises(PluginConfigError) as info:
            getattr(self.config, getter)(key)
        assert str(info.value) == message

    def test_wrong_type_raises_even_with_a_default(self) -> None:
        with pytest.raises(PluginConfigError, match=r"settings\.name"):
            self.config.get_int("name", 0)

    @pytest.mark.parametrize("getter", ["get_int", "get_i64", "get_float"])
    def test_bool_is_not_a_number(self, getter: str) -> None:
        with pytest.raises(PluginConfigError, match="got a boolean"):
            getattr(self.config, getter)("flag")

    def test_int_is_not_a_bool(self) -> None:
        with pytest.raises(PluginConfigError, match="expected a boolean, got an integer"):
            PluginConfig({"n": 1}).get_bool("n")

    def test_get_int_takes_big_integers(self) -> None:
        assert self.config.get_int("huge") == 2**70

    def test_get_i64_refuses_out_of_range(self) -> None:
        with pytest.raises(PluginConfigError, match=r"settings\.huge: .* 64-bit"):
            self.config.get_i64("huge")

    @pytest.mark.parametrize("value", [-(2**63), 2**63 - 1])
    def test_get_i64_bounds_are_inclusive(self, value: int) -> None:
        assert PluginConfig({"n": value}).get_i64("n") == value

    @pytest.mark.parametrize("value", [-(2**63) - 1, 2**63])
    def test_get_i64_just_outside(self, value: int) -> None:
        with pytest.raises(PluginConfigError, match="64-bit"):
            PluginConfig({"n": value}).get_i64("n")


class TestPluginConfigSet:
    def test_set_then_get(self) -> None:
        config = PluginConfig()
        config.set("precision", 12)
        assert config.get_int("precision") == 12
        config.set("precision", "high")
        assert config.get_string("precision") == "high"

    def test_set_normalises(self) -> None:
        config = PluginConfig()
        config.set("pair", (1, (2, 3)))
        config.set("nan", math.nan)
        config.set("inf", -math.inf)
        config.set("priority", PluginPriority.HIGH)
        assert config.settings == {"pair": [1, [2, 3]], "nan": None, "inf": None, "priority": 100}
        assert type(config.settings["priority"]) is int

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (object(), "settings.k: object is not JSON data"),
            ({1, 2}, "settings.k: set is not JSON data"),
            (b"raw", "settings.k: bytes is not JSON data"),
            ({1: "x"}, "settings.k: object keys must be strings, got 1"),
            ({"a": [1, object()]}, "settings.k.a[1]: object is not JSON data"),
        ],
    )
    def test_set_refuses_non_json(self, value: object, message: str) -> None:
        config = PluginConfig({"k": "before"})
        with pytest.raises(PluginConfigError) as info:
            config.set("k", value)
        assert str(info.value) == message
        assert config.settings == {"k": "before"}

    def test_set_refuses_non_string_keys(self) -> None:
        config = PluginConfig()
        with pytest.raises(PluginConfigError, match="keys must be strings"):
            config.set(1, "x")  # type: ignore[arg-type]
        assert config.settings == {}


class TestToJsonValue:
    def test_plain_values_pass_through(self) -> None:
        data = {"s": "x", "i": 1, "f": 1.5, "b": False, "n": None, "l": [1], "d": {}}
        assert to_json_value(data) == data

    def test_default_path_is_dollar(self) -> None:
        with pytest.raises(PluginConfigError, match=r"^\$\.x: "):
            to_json_value({"x": object()})
