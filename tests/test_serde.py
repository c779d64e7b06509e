"""The JSON wire format: error reports, events and reload settings, plain data, the converter."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import attrs
import cattrs
import pytest

from mofa_kernel import (
    HotReloadConfig,
    KernelEvent,
    PluginConfig,
    PluginError,
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
from mofa_kernel._wire import MAX_DEPTH, converter, error_lines, from_data, to_data

META = (
    '{"id":"p","name":"P","version":"1.0.0","description":"","plugin_type":"Tool",'
    '"priority":"Normal","dependencies":[],"capabilities":[],"author":null}'
)


#: PluginMetadata's fields in the seed's declaration order, which is the wire order.
FIELD_ORDER = [
    ("id", "p"),
    ("name", "P"),
    ("version", "1.0.0"),
    ("description", ""),
    ("plugin_type", {"Custom": "k"}),
    ("priority", "Normal"),
    ("dependencies", []),
    ("capabilities", []),
    ("author", "me"),
]


def errors_of(target: object, text: str | bytes) -> list[str]:
    with pytest.raises(SerializationError) as info:
        from_json(target, text)
    return list(info.value.errors)


def meta_with(**fields: object) -> str:
    data = json.loads(META)
    data.update(fields)
    return json.dumps(data)


# --------------------------------------------------------------------------
# Error reports


def test_unknown_variant_names_the_field_and_the_choices() -> None:
    assert errors_of(PluginMetadata, meta_with(priority="normal")) == [
        "$.priority: unknown variant 'normal', expected one of 'Low', 'Normal', 'High', 'Critical'"
    ]


def test_every_bad_field_is_reported_at_once() -> None:
    text = meta_with(
        id=1,
        version=None,
        plugin_type={"Custom": 5},
        priority=50,
        dependencies=["a", 2, None],
        capabilities="chat",
        author=False,
    )
    assert errors_of(PluginMetadata, text) == [
        "$.id: expected a string, got integer 1",
        "$.version: expected a string, got null",
        "$.plugin_type.Custom: expected a string, got integer 5",
        "$.priority: expected one of 'Low', 'Normal', 'High', 'Critical', got integer 50",
        "$.dependencies[1]: expected a string, got integer 2",
        "$.dependencies[2]: expected a string, got null",
        "$.capabilities: expected an array of strings, got string 'chat'",
        "$.author: expected a string, got boolean false",
    ]


def test_missing_and_duplicate_fields_are_reported_by_name() -> None:
    assert errors_of(PluginMetadata, '{"id":"p","id":"q","name":"P"}') == [
        "$.id: duplicate field",
        "$.version: missing field",
        "$.description: missing field",
        "$.plugin_type: missing field",
        "$.priority: missing field",
        "$.dependencies: missing field",
        "$.capabilities: missing field",
    ]


def test_settings_paths_reach_into_nested_values() -> None:
    lines = errors_of(
        PluginConfig,
        '{"settings":{"k":[1,"\\ud800"],"a b":{"\\udc00":1e999}},"enabled":1,"auto_start":null}',
    )
    assert lines == [
        "$.settings.k[1]: string holds a lone surrogate, which is not valid Unicode",
        '$.settings["a b"]["\\udc00"]: object key holds a lone surrogate, '
        "which is not valid Unicode",
        "$.enabled: expected a boolean, got integer 1",
        "$.auto_start: expected a boolean, got null",
    ]
    assert errors_of(
        PluginConfig, '{"settings":{"port":1e400},"enabled":true,"auto_start":true}'
    ) == ["$.settings.port: number out of range: 1e400"]


def test_array_form_errors_name_the_position() -> None:
    assert errors_of(PluginMetadata, '["p","P","1.0.0","","tool","Normal",[],[7],null]') == [
        "$[4]: unknown variant 'tool', expected one of 'LLM', 'Tool', 'Storage', 'Memory', "
        "'VectorDB', 'Communication', 'Monitor', 'Skill', 'Custom'",
        "$[7][0]: expected a string, got integer 7",
    ]
    (line,) = errors_of(PluginConfig, "[{},true]")
    assert line.startswith("$: expected PluginConfig as an array of 3 elements")


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        (PluginType, '"Custom"', """$: variant 'Custom' carries a value: write {"Custom": ...}"""),
        (
            PluginType,
            '{"LLM":{}}',
            "$.LLM: variant 'LLM' carries no value, expected null, got an object",
        ),
        (PluginState, '{"Error":"a","Error":"b"}', "got an object with 2 keys"),
        (PluginState, "{}", "got an object with 0 keys"),
        (PluginPriority, "null", "expected one of 'Low', 'Normal', 'High', 'Critical', got null"),
        (PluginConfig, "[]", "$: expected PluginConfig as an array of 3 elements"),
        (PluginType, "", "$: invalid JSON at line 1 column 1: Expecting value"),
        (PluginType, '"Tool" x', "$: invalid JSON at line 1 column 8: Extra data"),
        (PluginType, '{"Custom":"a\tb"}', "$: invalid JSON at line 1 column 13: Invalid control"),
        (PluginConfig, '{"settings":{"k":NaN}}', "$: invalid JSON: NaN is not a JSON number"),
        (
            PluginConfig,
            '{"settings":{"k":-1e400},"enabled":true,"auto_start":true}',
            "$.settings.k: number out of range: -1e400",
        ),
        (PluginType, '\ufeff"Tool"', "$: invalid JSON at line 1 column 1"),
        (PluginType, b'\xef\xbb\xbf"Tool"', "$: invalid JSON at line 1 column 1"),
        (PluginType, b'"\xff"', "$: invalid UTF-8 at byte 1"),
        (PluginType, '"\ud800"', "$: lone surrogate at character 1, which is not valid Unicode"),
    ],
)
def test_single_problem_messages(target: object, text: str | bytes, expected: str) -> None:
    (line,) = errors_of(target, text)
    assert line.startswith(expected) or expected in line


def test_errors_carry_no_library_internals() -> None:
    with pytest.raises(SerializationError) as info:
        from_json(PluginMetadata, meta_with(id=1, priority="x", plugin_type={"Custom": None}))
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, PluginError)
    assert str(error) == "\n".join(error.errors)
    assert len(error.errors) == 3
    for word in ("ClassValidationError", "While structuring", "cattrs", "Traceback", "@ $"):
        assert word not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def config_nesting(arrays: int) -> str:
    return '{"settings":{"k":' + "[" * arrays + "]" * arrays + '},"enabled":true,"auto_start":true}'


def test_nesting_limit_is_serde_jsons() -> None:
    # The document and settings are two objects: 125 arrays make 127 containers.
    assert from_json(PluginConfig, config_nesting(MAX_DEPTH - 2)).settings["k"]
    (line,) = errors_of(PluginConfig, config_nesting(MAX_DEPTH - 1))
    assert line == (
        "$.settings.k" + "[0]" * 125 + ": nested deeper than 127 arrays and objects "
        "(serde_json's recursion limit)"
    )


def test_deep_input_is_refused_without_recursion_error() -> None:
    for arrays in (1_000, 200_000):
        (line,) = errors_of(PluginConfig, config_nesting(arrays))
        assert "nested" in line
    assert errors_of(PluginType, "[" * 300_000) == [
        "$: arrays and objects nested too deeply for Python's JSON parser"
    ]


def with_extra(extra: str) -> str:
    return META[:-1] + ',"extra":' + extra + "}"


def test_unknown_fields_are_skipped_as_serde_skips_them() -> None:
    # serde_json skips an unknown field without a depth limit, without reading its
    # numbers and without decoding its escapes; only its syntax must be right.
    for extra in (
        "[" * 500 + "]" * 500,
        '{"n":[1e400,-1e999],"s":"\\ud800","\\udc00":{"a":1,"a":2}}',
    ):
        assert from_json(PluginMetadata, with_extra(extra)).id == "p"
    for extra in ("NaN", "[1,]", '"a\tb"', "01"):
        (line,) = errors_of(PluginMetadata, with_extra(extra))
        assert line.startswith("$: invalid JSON")
    # Field names themselves are read, unknown ones included.
    assert errors_of(PluginMetadata, META[:-1] + ',"\\ud800x":1}') == [
        '$["\\ud800x"]: field name holds a lone surrogate'
    ]


def test_deviation_unknown_field_deeper_than_pythons_parser() -> None:
    # Expected deviation (docs/interop.md): serde skips an unknown field nested
    # 100 000 deep; Python's json parser cannot descend that far, so it is refused.
    (line,) = errors_of(PluginMetadata, with_extra("[" * 100_000 + "]" * 100_000))
    assert line == "$: arrays and objects nested too deeply for Python's JSON parser"


def test_deep_plain_data_is_refused_with_its_path() -> None:
    deep: object = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(SerializationError) as info:
        from_data(PluginConfig, {"settings": {"k": deep}, "enabled": True, "auto_start": True})
    (line,) = info.value.errors
    # The document is one object, settings a second: the 126th array is the 128th container.
    assert line.startswith("$.settings.k" + "[0]" * 125 + ": nested deeper than 127")


def test_error_lines_serves_cattrs_generated_hooks() -> None:
    @attrs.define
    class Entry:
        name: str
        kind: PluginType
        tags: list[str]
        priority: PluginPriority = PluginPriority.NORMAL

    derived = converter.copy(forbid_extra_keys=True)
    with pytest.raises(cattrs.BaseValidationError) as info:
        derived.structure({"name": 1, "kind": "tool", "priority": "HIGH", "x y": 0}, Entry)
    assert sorted(error_lines(info.value, root="plugins.calc")) == sorted(
        [
            "plugins.calc.name: expected a string, got integer 1",
            "plugins.calc.kind: unknown variant 'tool', expected one of 'LLM', 'Tool', "
            "'Storage', 'Memory', 'VectorDB', 'Communication', 'Monitor', 'Skill', 'Custom'",
            "plugins.calc.tags: missing field",
            "plugins.calc.priority: unknown variant 'HIGH', expected one of "
            "'Low', 'Normal', 'High', 'Critical'",
            'plugins.calc["x y"]: unknown field',
        ]
    )
    entry = derived.structure({"name": "n", "kind": {"Custom": "k"}, "tags": ["a"]}, Entry)
    assert entry == Entry("n", PluginType.custom("k"), ["a"])


# --------------------------------------------------------------------------
# What serde accepts beyond the canonical form


def test_numbers_follow_serde_json_value() -> None:
    config = from_json(
        PluginConfig,
        '{"settings":{"z":-0,"u":18446744073709551615,"i":-9223372036854775808,'
        '"big":18446744073709551616,"e":1e2,"long":1' + "0" * 300 + "},"
        '"enabled":true,"auto_start":true}',
    )
    z = config.settings["z"]
    assert isinstance(z, float)
    assert math.copysign(1.0, z) == -1.0
    assert config.settings["u"] == 2**64 - 1
    assert config.settings["i"] == -(2**63)
    assert config.settings["big"] == 2.0**64
    assert config.settings["e"] == 100.0
    assert config.settings["long"] == 1e300
    assert all(isinstance(config.settings[key], float) for key in ("big", "e", "long"))
    (line,) = errors_of(
        PluginConfig, '{"settings":{"k":1' + "0" * 5000 + '},"enabled":true,"auto_start":true}'
    )
    assert line.startswith("$.settings.k: number out of range: 1000")


def test_duplicate_keys_inside_settings_keep_the_last() -> None:
    config = from_json(
        PluginConfig,
        '{"settings":{"k":1,"n":{"a":1,"a":2},"k":3},"enabled":true,"auto_start":true,'
        '"extra":1,"extra":2}',
    )
    assert config.settings == {"k": 3, "n": {"a": 2}}
    assert type(config.settings["n"]) is dict


def test_structs_read_from_arrays_and_unit_variants_from_null_maps() -> None:
    meta = from_json(PluginMetadata, '["p","P","1.0.0","",{"LLM":null},{"High":null},[],[],"me"]')
    assert meta == PluginMetadata(
        "p", "P", PluginType.LLM, priority=PluginPriority.HIGH, author="me"
    )
    assert from_json(PluginState, '{"Paused":null}') is PluginState.PAUSED
    assert from_json(PluginConfig, '[{"a":[]},false,true]') == PluginConfig(
        {"a": []}, enabled=False, auto_start=True
    )


def test_reading_takes_bytes_like_input_and_refuses_other_types() -> None:
    assert from_json(PluginType, b'"Tool"') is PluginType.TOOL
    assert from_json(PluginType, bytearray(b'{"Custom":"x"}')) == PluginType.custom("x")
    with pytest.raises(TypeError, match="from_json reads str or bytes, not int"):
        from_json(PluginType, 5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Events and reload settings


def sample_events() -> list[PluginEvent | ReloadEvent]:
    return [
        PluginEvent.PluginLoaded(plugin_id="calc"),
        PluginEvent.PluginUnloaded(plugin_id="calc"),
        PluginEvent.StateChanged(
            plugin_id="x", old_state=PluginState.LOADED, new_state=PluginState.error("boom")
        ),
        PluginEvent.PluginError(plugin_id="x", error="start: timed out"),
        PluginEvent.Custom(plugin_id="c", event_type="tick", data=b"\x00\xffA"),
        ReloadEvent.ReloadStarted(plugin_id="p", path=Path("src/p/__init__.py")),
        ReloadEvent.ReloadCompleted(
            plugin_id="p", path=Path("/a/b.py"), success=True, duration=0.000012
        ),
        ReloadEvent.ReloadFailed(plugin_id="p", path=Path("b.py"), error="b.py:3: boom", attempt=2),
        ReloadEvent.RollbackTriggered(plugin_id="p", reason="init failed"),
        ReloadEvent.PluginDiscovered(path=Path("/site/new.dist-info")),
        ReloadEvent.PluginRemoved(plugin_id="p", path=Path("/site/old.dist-info")),
        ReloadEvent.StatePreserved(plugin_id="p"),
        ReloadEvent.StateRestored(plugin_id="p"),
    ]


EVENT_JSON = [
    '{"PluginLoaded":{"plugin_id":"calc"}}',
    '{"PluginUnloaded":{"plugin_id":"calc"}}',
    '{"StateChanged":{"plugin_id":"x","old_state":"Loaded","new_state":{"Error":"boom"}}}',
    '{"PluginError":{"plugin_id":"x","error":"start: timed out"}}',
    '{"Custom":{"plugin_id":"c","event_type":"tick","data":[0,255,65]}}',
    '{"ReloadStarted":{"plugin_id":"p","path":"src/p/__init__.py"}}',
    '{"ReloadCompleted":{"plugin_id":"p","path":"/a/b.py","success":true,"duration":0.000012}}',
    '{"ReloadFailed":{"plugin_id":"p","path":"b.py","error":"b.py:3: boom","attempt":2}}',
    '{"RollbackTriggered":{"plugin_id":"p","reason":"init failed"}}',
    '{"PluginDiscovered":{"path":"/site/new.dist-info"}}',
    '{"PluginRemoved":{"plugin_id":"p","path":"/site/old.dist-info"}}',
    '{"StatePreserved":{"plugin_id":"p"}}',
    '{"StateRestored":{"plugin_id":"p"}}',
]


@pytest.mark.parametrize(("event", "text"), list(zip(sample_events(), EVENT_JSON, strict=True)))
def test_events_are_externally_tagged_and_round_trip(
    event: PluginEvent | ReloadEvent, text: str
) -> None:
    assert to_json(event) == text
    family = PluginEvent if isinstance(event, PluginEvent) else ReloadEvent
    assert from_json(type(event), text) == event
    assert from_json(family, text) == event
    assert from_json(KernelEvent, text) == event
    assert from_data(KernelEvent, to_data(event)) == event


def test_event_families_refuse_each_others_variants() -> None:
    (line,) = errors_of(PluginEvent, EVENT_JSON[5])
    assert line.startswith("$: unknown variant 'ReloadStarted', expected one of 'PluginLoaded'")
    (line,) = errors_of(PluginEvent.StateChanged, EVENT_JSON[0])
    assert line == "$: unknown variant 'PluginLoaded', expected one of 'StateChanged'"
    (line,) = errors_of(KernelEvent, '"StateRestored"')
    assert line == """$: variant 'StateRestored' carries a value: write {"StateRestored": ...}"""


def test_event_fields_are_checked_like_struct_fields() -> None:
    assert errors_of(
        KernelEvent,
        '{"ReloadFailed":{"plugin_id":"p","path":3,"error":"e","attempt":-1,"x":0}}',
    ) == [
        "$.ReloadFailed.path: expected a path as a string, got integer 3",
        "$.ReloadFailed.attempt: expected an integer in 0..=4294967295, got integer -1",
    ]
    assert errors_of(
        PluginEvent, '{"Custom":{"plugin_id":"c","event_type":"t","data":"AAE="}}'
    ) == ["$.Custom.data: expected an array of bytes (integers 0..=255), got string 'AAE='"]
    assert errors_of(
        PluginEvent, '{"Custom":{"plugin_id":"c","event_type":"t","data":[1,256]}}'
    ) == ["$.Custom.data[1]: expected an integer in 0..=255, got integer 256"]
    assert errors_of(ReloadEvent, '{"ReloadCompleted":["p","a.py",true,-0.5]}') == [
        "$.ReloadCompleted[3]: expected a non-negative number of seconds, got number -0.5"
    ]


def test_reload_strategies_on_the_wire() -> None:
    assert to_json(ReloadStrategy.IMMEDIATE) == '"Immediate"'
    assert to_json(ReloadStrategy.MANUAL) == '"Manual"'
    assert to_json(ReloadStrategy.ON_IDLE) == '"OnIdle"'
    assert to_json(ReloadStrategy.debounced(1.0)) == '{"Debounced":1.0}'
    assert to_json(ReloadStrategy.debounced(0.25)) == '{"Debounced":0.25}'
    assert from_json(ReloadStrategy, '{"Debounced":2}') == ReloadStrategy.debounced(2.0)
    assert from_json(ReloadStrategy, '{"OnIdle":null}') == ReloadStrategy.ON_IDLE
    assert errors_of(ReloadStrategy, '"Debounced"') == [
        """$: variant 'Debounced' carries a value: write {"Debounced": ...}"""
    ]
    assert errors_of(ReloadStrategy, '{"Debounced":-1}') == [
        "$.Debounced: expected a non-negative number of seconds, got integer -1"
    ]
    assert errors_of(ReloadStrategy, '"immediate"') == [
        "$: unknown variant 'immediate', expected one of "
        "'Immediate', 'Manual', 'OnIdle', 'Debounced'"
    ]


def test_hot_reload_config_round_trips() -> None:
    default = HotReloadConfig()
    assert to_json(default) == (
        '{"strategy":{"Debounced":1.0},"preserve_state":true,"auto_rollback":true,'
        '"max_reload_attempts":3,"reload_cooldown":5.0}'
    )
    assert from_json(HotReloadConfig, to_json(default)) == default
    custom = (
        HotReloadConfig()
        .with_strategy(ReloadStrategy.MANUAL)
        .with_preserve_state(False)
        .with_max_attempts(0)
        .with_reload_cooldown(0.00001)
    )
    text = to_json(custom)
    assert '"reload_cooldown":0.00001' in text
    assert from_json(HotReloadConfig, text) == custom
    assert from_json(HotReloadConfig, '["Immediate",true,false,7,1]') == HotReloadConfig(
        ReloadStrategy.IMMEDIATE, auto_rollback=False, max_reload_attempts=7, reload_cooldown=1.0
    )
    assert errors_of(HotReloadConfig, '{"strategy":"Manual","preserve_state":true}') == [
        "$.auto_rollback: missing field",
        "$.max_reload_attempts: missing field",
        "$.reload_cooldown: missing field",
    ]


# --------------------------------------------------------------------------
# Writing


def test_floats_are_spelled_as_rust_writes_them() -> None:
    cases = [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (-1.5e300, "-1.5e300"),
        (1e-4, "0.0001"),
        (1e-5, "0.00001"),
        (-1.2345e-5, "-0.000012345"),
        (9.999999999999999e-6, "9.999999999999999e-6"),
        (1e-7, "1e-7"),
        (5e-324, "5e-324"),
        (123456.789, "123456.789"),
    ]
    for number, text in cases:
        assert to_json([number]) == f"[{text}]"
        assert float(text) == number


def test_non_finite_and_huge_numbers() -> None:
    config = PluginConfig({"a": 1.0})
    config.settings.update({"nan": math.nan, "inf": -math.inf, "big": 2**70})
    assert to_json(config) == (
        '{"settings":{"a":1.0,"nan":null,"inf":null,"big":1.1805916207174113e21},'
        '"enabled":true,"auto_start":true}'
    )
    with pytest.raises(SerializationError, match=r"^\$\.k: integer is beyond the range"):
        to_json({"k": 10**400})


def test_settings_nested_objects_are_sorted_but_top_level_keeps_order() -> None:
    config = PluginConfig({"z": {"b": 1, "a": [{"y": 0, "x": 0}]}, "a": {"_": 1, "B": 2}})
    assert to_json(config) == (
        '{"settings":{"z":{"a":[{"x":0,"y":0}],"b":1},"a":{"B":2,"_":1}},'
        '"enabled":true,"auto_start":true}'
    )
    assert to_json({"z": 1, "a": {"z": 1, "a": 2}}) == '{"z":1,"a":{"z":1,"a":2}}'


def test_strings_are_raw_utf8_with_serde_escapes() -> None:
    text = to_json(PluginType.custom('é😀\u2028\x7f/"\\\x00\x1f\b\f\n\r\t'))
    assert text == '{"Custom":"é😀\u2028\x7f/\\"\\\\\\u0000\\u001f\\b\\f\\n\\r\\t"}'


def test_writing_refuses_what_rust_cannot_read() -> None:
    with pytest.raises(SerializationError) as info:
        to_json(PluginMetadata("p", "bad \udc80", PluginType.TOOL))
    assert info.value.errors == (
        "$.name: string holds a lone surrogate, which is not valid Unicode",
    )
    with pytest.raises(
        SerializationError, match=r"^\$\.ReloadFailed\.attempt: 4294967296 does not"
    ):
        to_json(ReloadEvent.ReloadFailed(plugin_id="p", path="x", error="e", attempt=2**32))
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested deeper than 127"):
        to_json(deep)
    config = PluginConfig()
    config.settings["k"] = deep
    with pytest.raises(SerializationError, match=r"^\$\.settings\.k(\[0\])+: nested deeper"):
        to_json(config)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "$: cannot serialise a value of type 'object' as JSON"),
        ({1: 2}, "$: object keys must be strings, got integer 1"),
        ({"a": [1, {2, 3}]}, "$.a[1]: cannot serialise a value of type 'set' as JSON"),
        ({"a b": b"x"}, "$[\"a b\"]: cannot serialise a value of type 'bytes' as JSON"),
        (PluginEvent, "$: cannot serialise a value of type 'type' as JSON"),
    ],
)
def test_unsupported_values_are_type_errors(value: object, message: str) -> None:
    with pytest.raises(TypeError) as info:
        to_json(value)
    assert str(info.value) == message


def test_unsupported_targets_are_type_errors() -> None:
    for target in (int, dict, PluginError, list[PluginMetadata], "PluginType"):
        with pytest.raises(TypeError, match="not a mofa-kernel wire type"):
            from_json(target, "1")


# --------------------------------------------------------------------------
# Plain data and the converter


def test_to_data_gives_serde_shapes_and_takes_mixed_data() -> None:
    meta = PluginMetadata("p", "P", PluginType.custom("k"), author="me")
    data = to_data({"metadata": meta, "state": PluginState.RUNNING, "ids": ("a", "b")})
    assert data == {
        "metadata": dict(FIELD_ORDER),
        "state": "Running",
        "ids": ["a", "b"],
    }
    assert isinstance(data, dict)
    assert isinstance(data["metadata"], dict)
    assert list(data["metadata"]) == [field for field, _ in FIELD_ORDER]
    assert to_data(PluginPriority.CRITICAL) == "Critical"


def test_from_data_reads_what_from_json_reads() -> None:
    text = meta_with(dependencies=["a"], plugin_type={"Custom": "k"})
    assert from_data(PluginMetadata, json.loads(text)) == from_json(PluginMetadata, text)
    assert (
        from_data(PluginMetadata, ("p", "P", "1", "", "LLM", "Low", ("a",), [], None)).version
        == "1"
    )
    with pytest.raises(SerializationError) as info:
        from_data(
            PluginConfig, {"settings": {"s": {1, 2}, 3: 4}, "enabled": True, "auto_start": True}
        )
    assert info.value.errors == (
        "$.settings.s: expected JSON data, got a Python set",
        "$.settings[3]: object keys must be strings, got integer 3",
    )


def test_converter_carries_the_same_hooks() -> None:
    meta = PluginMetadata("p", "P", PluginType.TOOL)
    assert converter.unstructure(meta) == to_data(meta)
    assert converter.unstructure(PluginPriority.LOW) == "Low"
    assert converter.structure(json.loads(META), PluginMetadata) == meta
    assert converter.structure({"Error": "x"}, PluginState) == PluginState.error("x")
    assert converter.structure(json.loads(EVENT_JSON[2]), KernelEvent) == (sample_events()[2])
    with pytest.raises(cattrs.BaseValidationError):
        converter.structure({"Error": 1}, PluginState)


def test_importing_the_package_does_not_import_the_serde_machinery() -> None:
    code = (
        "import sys, mofa_kernel\n"
        "assert 'cattrs' not in sys.modules, 'cattrs'\n"
        "assert 'mofa_kernel._wire._converter' not in sys.modules, '_wire'\n"
        "assert mofa_kernel.to_json(mofa_kernel.PluginState.RUNNING) == '\"Running\"'\n"
        "assert 'mofa_kernel._wire._converter' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metadata_to_json_is_cheap() -> None:
    meta = PluginMetadata("p", "P", PluginType.TOOL, dependencies=["a", "b"], author="é")
    to_json(meta)
    start = time.perf_counter()
    for _ in range(1000):
        to_json(meta)
    # Tens of microseconds each; the bound is loose so a loaded machine does not fail it.
    assert time.perf_counter() - start < 1.0
