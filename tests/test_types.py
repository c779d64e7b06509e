"""PluginType, PluginState and PluginPriority: the seed's three enums."""

from __future__ import annotations

import pickle

import attrs
import pytest

from mofa_kernel import PluginPriority, PluginState, PluginType

BUILTIN_TYPES = {
    "LLM": "LLM",
    "TOOL": "Tool",
    "STORAGE": "Storage",
    "MEMORY": "Memory",
    "VECTOR_DB": "VectorDB",
    "COMMUNICATION": "Communication",
    "MONITOR": "Monitor",
    "SKILL": "Skill",
}

UNIT_STATES = {
    "UNLOADED": "Unloaded",
    "LOADING": "Loading",
    "LOADED": "Loaded",
    "RUNNING": "Running",
    "PAUSED": "Paused",
}


class TestPluginType:
    @pytest.mark.parametrize(("attr", "variant"), BUILTIN_TYPES.items())
    def test_builtin_members(self, attr: str, variant: str) -> None:
        member = getattr(PluginType, attr)
        assert isinstance(member, PluginType)
        assert member.variant == variant
        assert member.custom_name is None
        assert not member.is_custom
        assert repr(member) == f"PluginType.{attr}"
        assert str(member) == variant

    def test_builtins_in_seed_order(self) -> None:
        assert [t.variant for t in PluginType.builtins()] == list(BUILTIN_TYPES.values())

    def test_custom(self) -> None:
        kind = PluginType.custom("my-kind")
        assert kind.is_custom
        assert kind.variant == "Custom"
        assert kind.custom_name == "my-kind"
        assert repr(kind) == "PluginType.custom('my-kind')"
        assert str(kind) == "my-kind"

    def test_equality_and_hash_are_by_value(self) -> None:
        assert PluginType("Tool") == PluginType.TOOL
        assert PluginType.custom("x") == PluginType.custom("x")
        assert PluginType.custom("x") != PluginType.custom("y")
        assert PluginType.custom("Tool") != PluginType.TOOL
        assert len({PluginType.TOOL, PluginType("Tool"), PluginType.custom("x")}) == 2

    def test_frozen(self) -> None:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            PluginType.TOOL.variant = "LLM"  # type: ignore[misc]

    def test_unknown_variant_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown plugin type 'Gadget'"):
            PluginType("Gadget")

    def test_builtin_with_a_name_is_refused(self) -> None:
        with pytest.raises(TypeError, match="carries no custom name"):
            PluginType("Tool", "x")

    def test_custom_needs_a_string(self) -> None:
        with pytest.raises(TypeError, match="needs a string name"):
            PluginType.custom(3)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("tool", PluginType.TOOL),
            ("Tool", PluginType.TOOL),
            ("TOOL", PluginType.TOOL),
            ("llm", PluginType.LLM),
            ("vector_db", PluginType.VECTOR_DB),
            ("vector-db", PluginType.VECTOR_DB),
            ("VectorDB", PluginType.VECTOR_DB),
            ("monitor", PluginType.MONITOR),
            ("gadget", PluginType.custom("gadget")),
            ("Custom", PluginType.custom("Custom")),
        ],
    )
    def test_parse(self, text: str, expected: PluginType) -> None:
        assert PluginType.parse(text) == expected

    def test_parse_keeps_custom_spelling(self) -> None:
        assert PluginType.parse("My-Kind").custom_name == "My-Kind"

    @pytest.mark.parametrize("value", [PluginType.SKILL, PluginType.custom("k")])
    def test_pickle(self, value: PluginType) -> None:
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 - our own object


class TestPluginState:
    @pytest.mark.parametrize(("attr", "variant"), UNIT_STATES.items())
    def test_unit_members(self, attr: str, variant: str) -> None:
        member = getattr(PluginState, attr)
        assert member.variant == variant
        assert member.message is None
        assert not member.is_error
        assert repr(member) == f"PluginState.{attr}"
        assert str(member) == variant

    def test_error_carries_its_message(self) -> None:
        state = PluginState.error("disk full")
        assert state.is_error
        assert state.variant == "Error"
        assert state.message == "disk full"
        assert repr(state) == "PluginState.error('disk full')"
        assert str(state) == "Error(disk full)"

    def test_equality(self) -> None:
        assert PluginState("Running") == PluginState.RUNNING
        assert PluginState.error("a") == PluginState.error("a")
        assert PluginState.error("a") != PluginState.error("b")
        assert PluginState.RUNNING != PluginState.PAUSED
        assert hash(PluginState.error("a")) == hash(PluginState.error("a"))

    def test_states_have_no_order(self) -> None:
        with pytest.raises(TypeError):
            _ = PluginState.LOADED < PluginState.RUNNING  # type: ignore[operator]

    def test_unknown_variant_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown plugin state 'Sleeping'"):
            PluginState("Sleeping")

    def test_unit_state_with_message_is_refused(self) -> None:
        with pytest.raises(TypeError, match="carries no message"):
            PluginState("Running", "why")

    def test_error_needs_a_string(self) -> None:
        with pytest.raises(TypeError, match="needs a string message"):
            PluginState.error(None)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [PluginState.PAUSED, PluginState.error("x")])
    def test_pickle(self, value: PluginState) -> None:
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 - our own object


class TestPluginPriority:
    def test_values(self) -> None:
        assert {p.name: int(p) for p in PluginPriority} == {
            "LOW": 0,
            "NORMAL": 50,
            "HIGH": 100,
            "CRITICAL": 200,
        }

    def test_is_ordered_like_ints(self) -> None:
        assert sorted(PluginPriority, reverse=True) == [
            PluginPriority.CRITICAL,
            PluginPriority.HIGH,
            PluginPriority.NORMAL,
            PluginPriority.LOW,
        ]
        assert PluginPriority.HIGH > PluginPriority.NORMAL
        assert PluginPriority(100) is PluginPriority.HIGH

    def test_variant_is_the_serde_name(self) -> None:
        assert [p.variant for p in PluginPriority] == ["Low", "Normal", "High", "Critical"]

    def test_unknown_value_is_refused(self) -> None:
        with pytest.raises(ValueError, match="7"):
            PluginPriority(7)
