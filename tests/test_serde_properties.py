"""Properties of the wire format over generated values of every serialisable type.

Round trips are exact, floats included, because Python reads floats correctly
(serde_json does not always; see test_interop_rust_serde). ``-0.0 == 0.0`` and
``1 == 1.0`` in Python, so each round trip also compares the JSON text.
Example counts come from the hypothesis profile (tests/conftest.py);
``MOFA_TEST_QUICK=1`` makes them few.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mofa_kernel import (
    HotReloadConfig,
    KernelEvent,
    PluginConfig,
    PluginEvent,
    PluginMetadata,
    PluginPriority,
    PluginState,
    PluginType,
    ReloadEvent,
    ReloadStrategy,
    SerializationError,
    from_json,
    to_json,
)
from mofa_kernel._wire import from_data, to_data

I64_MIN, U64_MAX, U32_MAX = -(2**63), 2**64 - 1, 2**32 - 1

# Any Unicode but lone surrogates (which no Rust string holds), control characters included.
text = st.text(st.characters(exclude_categories=["Cs"]))
finite = st.floats(allow_nan=False, allow_infinity=False)
seconds = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
u32 = st.integers(0, U32_MAX)
paths = text.map(Path)

plugin_types = st.sampled_from(PluginType.builtins()) | st.builds(PluginType.custom, text)
plugin_states = st.sampled_from(
    [
        PluginState.UNLOADED,
        PluginState.LOADING,
        PluginState.LOADED,
        PluginState.RUNNING,
        PluginState.PAUSED,
    ]
) | st.builds(PluginState.error, text)
priorities = st.sampled_from(PluginPriority)

metadata = st.builds(
    PluginMetadata,
    id=text,
    name=text,
    plugin_type=plugin_types,
    version=text,
    description=text,
    priority=priorities,
    dependencies=st.lists(text, max_size=4),
    capabilities=st.lists(text, max_size=4),
    author=st.none() | text,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(I64_MIN, U64_MAX)
    | st.sampled_from([I64_MIN, U64_MAX, 2**63, -0.0])
    | finite
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=16,
)
configs = st.builds(
    PluginConfig,
    settings=st.dictionaries(text, json_values, max_size=6),
    enabled=st.booleans(),
    auto_start=st.booleans(),
)

plugin_events = st.one_of(
    st.builds(PluginEvent.PluginLoaded, plugin_id=text),
    st.builds(PluginEvent.PluginUnloaded, plugin_id=text),
    st.builds(
        PluginEvent.StateChanged, plugin_id=text, old_state=plugin_states, new_state=plugin_states
    ),
    st.builds(PluginEvent.PluginError, plugin_id=text, error=text),
    st.builds(PluginEvent.Custom, plugin_id=text, event_type=text, data=st.binary(max_size=32)),
)
reload_events = st.one_of(
    st.builds(ReloadEvent.ReloadStarted, plugin_id=text, path=paths),
    st.builds(
        ReloadEvent.ReloadCompleted,
        plugin_id=text,
        path=paths,
        success=st.booleans(),
        duration=seconds,
    ),
    st.builds(ReloadEvent.ReloadFailed, plugin_id=text, path=paths, error=text, attempt=u32),
    st.builds(ReloadEvent.RollbackTriggered, plugin_id=text, reason=text),
    st.builds(ReloadEvent.PluginDiscovered, path=paths),
    st.builds(ReloadEvent.PluginRemoved, plugin_id=text, path=paths),
    st.builds(ReloadEvent.StatePreserved, plugin_id=text),
    st.builds(ReloadEvent.StateRestored, plugin_id=text),
)
strategies = st.sampled_from(
    [ReloadStrategy.IMMEDIATE, ReloadStrategy.MANUAL, ReloadStrategy.ON_IDLE]
) | st.builds(ReloadStrategy.debounced, seconds)
hot_reload_configs = st.builds(
    HotReloadConfig,
    strategy=strategies,
    preserve_state=st.booleans(),
    auto_rollback=st.booleans(),
    max_reload_attempts=u32,
    reload_cooldown=seconds,
)

wire_values = st.one_of(
    plugin_types,
    plugin_states,
    priorities,
    metadata,
    configs,
    plugin_events,
    reload_events,
    strategies,
    hot_reload_configs,
)


def assert_round_trips(value: Any, target: object) -> None:
    text = to_json(value)
    back = from_json(target, text)
    assert back == value
    assert to_json(back) == text
    assert from_data(target, to_data(value)) == value


@given(wire_values)
def test_every_value_round_trips_through_json(value: Any) -> None:
    assert_round_trips(value, type(value))


@given(plugin_events | reload_events)
def test_events_round_trip_through_their_families(event: PluginEvent | ReloadEvent) -> None:
    assert_round_trips(event, KernelEvent)
    assert_round_trips(event, PluginEvent if isinstance(event, PluginEvent) else ReloadEvent)


@given(wire_values)
def test_output_is_compact_json_that_python_reads_to_the_same_data(value: Any) -> None:
    text = to_json(value)
    text.encode("utf-8")  # no lone surrogates
    assert json.loads(text) == to_data(value)
    assert json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) == (
        json.dumps(to_data(value), ensure_ascii=False, separators=(",", ":"))
    )
    assert not any(ord(char) < 0x20 for char in text)


@given(configs)
def test_objects_nested_in_settings_are_written_sorted(config: PluginConfig) -> None:
    def sorted_everywhere(data: Any) -> bool:
        if isinstance(data, dict):
            return list(data) == sorted(data) and all(map(sorted_everywhere, data.values()))
        if isinstance(data, list):
            return all(map(sorted_everywhere, data))
        return True

    settings = json.loads(to_json(config))["settings"]
    assert list(settings) == list(config.settings)
    assert all(map(sorted_everywhere, settings.values()))


@given(finite)
def test_floats_are_written_in_rust_spelling_and_read_back_exactly(number: float) -> None:
    written = to_json([number])[1:-1]
    assert float(written) == number
    assert math.copysign(1.0, float(written)) == math.copysign(1.0, number)
    assert "e+" not in written
    assert "e-0" not in written
    if number == 0 or 1e-5 <= abs(number) < 1e16:
        assert "e" not in written
        assert "." in written
    else:
        assert "e" in written
    assert (
        from_json(
            PluginConfig, f'{{"settings":{{"x":{written}}},"enabled":true,"auto_start":true}}'
        ).settings["x"]
        == number
    )


def outcome(read: Callable[[], object]) -> object:
    """What ``read()`` returns, or the SerializationError it raises."""
    try:
        return read()
    except SerializationError as error:
        return error


def is_clean_report(error: SerializationError) -> bool:
    return bool(error.errors) and all(
        line.startswith("$") and ": " in line for line in error.errors
    )


targets = st.sampled_from([PluginType, PluginMetadata, PluginConfig, HotReloadConfig, KernelEvent])
jsonish = st.text(max_size=60) | st.text('{}[]":,-019.eE+ \\/ultrufasN\ud800\t', max_size=40)


@given(jsonish, targets)
def test_arbitrary_text_is_read_or_refused_cleanly(text: str, target: object) -> None:
    result = outcome(lambda: from_json(target, text))
    if isinstance(result, SerializationError):
        assert is_clean_report(result)
    else:
        assert to_json(result)


@given(wire_values, st.integers(min_value=0), st.characters(), targets)
def test_damaged_documents_are_read_or_refused_cleanly(
    value: Any, where: int, char: str, target: object
) -> None:
    text = to_json(value)
    at = where % len(text)
    damaged = text[:at] + char + text[at + 1 :]
    result = outcome(lambda: from_json(target, damaged))
    if isinstance(result, SerializationError):
        assert is_clean_report(result)
    else:
        assert from_json(target, to_json(result)) == result


@given(json_values, st.sampled_from([PluginMetadata, PluginConfig, HotReloadConfig, PluginEvent]))
def test_arbitrary_data_is_read_or_refused_cleanly(data: Any, target: type) -> None:
    result = outcome(lambda: from_data(target, data))
    if isinstance(result, SerializationError):
        assert is_clean_report(result)
    else:
        assert isinstance(result, target)
