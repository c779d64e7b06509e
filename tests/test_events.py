"""PluginEvent and ReloadEvent: variants as attributes of their family, fields as in the seed."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import attrs
import pytest

from mofa_kernel import PluginEvent, PluginState, ReloadEvent
from mofa_kernel._events import PLUGIN_EVENT_VARIANTS, RELOAD_EVENT_VARIANTS

#: Variant name -> its fields in the seed's order, with a sample value each.
PLUGIN_EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "PluginLoaded": {"plugin_id": "calc"},
    "PluginUnloaded": {"plugin_id": "calc"},
    "StateChanged": {
        "plugin_id": "calc",
        "old_state": PluginState.LOADED,
        "new_state": PluginState.RUNNING,
    },
    "PluginError": {"plugin_id": "calc", "error": "ValueError: boom"},
    "Custom": {"plugin_id": "calc", "event_type": "tick", "data": b"\x00\x01"},
}

RELOAD_EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "ReloadStarted": {"plugin_id": "calc", "path": Path("src/calc.py")},
    "ReloadCompleted": {
        "plugin_id": "calc",
        "path": Path("src/calc.py"),
        "success": True,
        "duration": 0.25,
    },
    "ReloadFailed": {
        "plugin_id": "calc",
        "path": Path("src/calc.py"),
        "error": "SyntaxError (calc.py:3)",
        "attempt": 2,
    },
    "RollbackTriggered": {"plugin_id": "calc", "reason": "init failed"},
    "PluginDiscovered": {"path": Path("site-packages/new_plugin")},
    "PluginRemoved": {"plugin_id": "calc", "path": Path("site-packages/calc")},
    "StatePreserved": {"plugin_id": "calc"},
    "StateRestored": {"plugin_id": "calc"},
}

ALL_VARIANTS = [(PluginEvent, name, fields) for name, fields in PLUGIN_EVENT_FIELDS.items()] + [
    (ReloadEvent, name, fields) for name, fields in RELOAD_EVENT_FIELDS.items()
]


def build(family: type, name: str, fields: dict[str, Any]) -> Any:
    return getattr(family, name)(**fields)


@pytest.mark.parametrize(("family", "name", "fields"), ALL_VARIANTS)
class TestEveryVariant:
    def test_reachable_as_attribute_and_instance_of_family(
        self, family: type, name: str, fields: dict[str, Any]
    ) -> None:
        cls = getattr(family, name)
        event = cls(**fields)
        assert isinstance(event, family)
        assert issubclass(cls, family)
        assert cls.variant == name
        assert cls.__name__ == name
        assert cls.__qualname__ == f"{family.__name__}.{name}"
        assert cls.__module__ == "mofa_kernel"

    def test_fields_as_in_the_seed(self, family: type, name: str, fields: dict[str, Any]) -> None:
        event = build(family, name, fields)
        assert [f.name for f in attrs.fields(type(event))] == list(fields)
        for field, value in fields.items():
            assert getattr(event, field) == value

    def test_keyword_only(self, family: type, name: str, fields: dict[str, Any]) -> None:
        with pytest.raises(TypeError):
            getattr(family, name)(*fields.values())

    def test_repr_names_family_and_variant(
        self, family: type, name: str, fields: dict[str, Any]
    ) -> None:
        text = repr(build(family, name, fields))
        assert text.startswith(f"{family.__name__}.{name}(")
        for field in fields:
            assert f"{field}=" in text

    def test_frozen_and_hashable(self, family: type, name: str, fields: dict[str, Any]) -> None:
        event = build(family, name, fields)
        field = next(iter(fields))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(event, field, fields[field])
        assert hash(event) == hash(build(family, name, fields))

    def test_pickle_and_copy(self, family: type, name: str, fields: dict[str, Any]) -> None:
        event = build(family, name, fields)
        restored = pickle.loads(pickle.dumps(event))  # noqa: S301 - our own object
        assert restored == event
        assert type(restored) is type(event)
        assert copy.deepcopy(event) == event

    def test_in_the_variant_table(self, family: type, name: str, fields: dict[str, Any]) -> None:
        table = PLUGIN_EVENT_VARIANTS if family is PluginEvent else RELOAD_EVENT_VARIANTS
        assert table[name] is getattr(family, name)


def test_variant_tables_are_complete() -> None:
    assert list(PLUGIN_EVENT_VARIANTS) == list(PLUGIN_EVENT_FIELDS)
    assert list(RELOAD_EVENT_VARIANTS) == list(RELOAD_EVENT_FIELDS)


def test_state_changed_repr() -> None:
    event = PluginEvent.StateChanged(
        plugin_id="calc", old_state=PluginState.LOADED, new_state=PluginState.error("boom")
    )
    assert repr(event) == (
        "PluginEvent.StateChanged(plugin_id='calc', old_state=PluginState.LOADED, "
        "new_state=PluginState.error('boom'))"
    )


def test_variants_of_different_kinds_differ() -> None:
    loaded = PluginEvent.PluginLoaded(plugin_id="a")
    unloaded = PluginEvent.PluginUnloaded(plugin_id="a")
    assert loaded != unloaded
    assert not isinstance(loaded, ReloadEvent)
    assert not isinstance(ReloadEvent.StatePreserved(plugin_id="a"), PluginEvent)


@pytest.mark.parametrize("family", [PluginEvent, ReloadEvent])
def test_family_itself_cannot_be_built(family: type) -> None:
    with pytest.raises(TypeError, match="build one of its variants"):
        family()


class TestConversions:
    def test_paths_become_path_objects(self) -> None:
        event = ReloadEvent.ReloadStarted(plugin_id="a", path="src/a.py")
        assert event.path == Path("src/a.py")
        assert isinstance(event.path, Path)
        assert ReloadEvent.PluginDiscovered(path="x").path == Path("x")

    def test_duration_is_float_seconds(self) -> None:
        event = ReloadEvent.ReloadCompleted(plugin_id="a", path="p", success=True, duration=2)
        assert event.duration == 2.0
        assert type(event.duration) is float

    @pytest.mark.parametrize("data", [b"ab", bytearray(b"ab"), memoryview(b"ab")])
    def test_custom_data_becomes_bytes(self, data: bytes) -> None:
        event = PluginEvent.Custom(plugin_id="a", event_type="t", data=data)
        assert event.data == b"ab"
        assert type(event.data) is bytes

    def test_custom_data_defaults_to_empty(self) -> None:
        assert PluginEvent.Custom(plugin_id="a", event_type="t").data == b""

    @pytest.mark.parametrize("data", [5, "text", [1, 2]])
    def test_custom_data_must_be_binary(self, data: object) -> None:
        with pytest.raises(TypeError, match="data must be bytes"):
            PluginEvent.Custom(plugin_id="a", event_type="t", data=data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build_event", "match"),
    [
        (lambda: PluginEvent.PluginLoaded(plugin_id=1), "plugin_id"),
        (
            lambda: PluginEvent.StateChanged(
                plugin_id="a", old_state="Loaded", new_state=PluginState.RUNNING
            ),
            "old_state",
        ),
        (lambda: PluginEvent.PluginError(plugin_id="a", error=None), "error"),
        (
            lambda: ReloadEvent.ReloadCompleted(plugin_id="a", path="p", success=1, duration=1.0),
            "success",
        ),
        (
            lambda: ReloadEvent.ReloadFailed(plugin_id="a", path="p", error="e", attempt="2"),
            "attempt",
        ),
        (
            lambda: ReloadEvent.ReloadCompleted(
                plugin_id="a", path="p", success=True, duration="1.5"
            ),
            "duration",
        ),
        (
            lambda: ReloadEvent.ReloadCompleted(
                plugin_id="a", path="p", success=True, duration=True
            ),
            "duration",
        ),
    ],
)
def test_field_types_are_checked(build_event: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        build_event()


def test_missing_field_is_refused() -> None:
    with pytest.raises(TypeError, match="new_state"):
        PluginEvent.StateChanged(plugin_id="a", old_state=PluginState.LOADED)  # type: ignore[call-arg]
