"""The wire format against serde_json itself: its golden output and its verdicts on 86 inputs.

The fixtures in ``data/rust-serde`` were written by serde_json 1.0.87 from the
seed's Rust types (see the README there). Reading a golden and writing it back
must give the same bytes; every input in ``accepts.json`` must be accepted or
refused as serde does, and what is accepted must be written back as serde did.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mofa_kernel import (
    PluginConfig,
    PluginMetadata,
    PluginPriority,
    PluginState,
    PluginType,
    SerializationError,
    from_json,
    to_json,
)

DATA = Path(__file__).parent / "data" / "rust-serde"
CASES: dict[str, str] = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
ACCEPTS: list[dict[str, Any]] = json.loads((DATA / "accepts.json").read_text(encoding="utf-8"))
TYPES: dict[str, type] = {
    "PluginType": PluginType,
    "PluginState": PluginState,
    "PluginPriority": PluginPriority,
    "PluginMetadata": PluginMetadata,
    "PluginConfig": PluginConfig,
}

#: Inputs whose floats serde_json reads 1 ULP off (its parser is not correctly
#: rounded; README note 6). Python reads them exactly, so its output differs there.
SERDE_MISROUNDS = {"config_float_parse_not_correctly_rounded"}


def golden(case: str) -> bytes:
    return (DATA / f"{case}.json").read_bytes()


def within_one_ulp(ours: Any, theirs: Any) -> bool:
    """Structural equality in which two floats may differ by one unit in the last place."""
    if isinstance(ours, float) and isinstance(theirs, float):
        return ours == theirs or abs(ours - theirs) <= math.ulp(max(abs(ours), abs(theirs)))
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return list(ours) == list(theirs) and all(within_one_ulp(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(within_one_ulp, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def test_fixtures_are_complete() -> None:
    assert len(CASES) == 32
    assert all((DATA / f"{case}.json").is_file() for case in CASES)
    assert len(ACCEPTS) == 86
    assert sum(entry["accepted"] for entry in ACCEPTS) == 31


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_reads_and_writes_back_byte_for_byte(case: str) -> None:
    raw = golden(case)
    value = from_json(TYPES[CASES[case]], raw)
    assert isinstance(value, TYPES[CASES[case]])
    assert to_json(value).encode("utf-8") == raw


def test_nested_settings_golden_is_structurally_equal() -> None:
    # Rust's top-level settings order is a HashMap's, so compare structure, and
    # check that an object nested in a value comes out sorted as BTreeMap sorts.
    config = from_json(PluginConfig, golden("config_settings_nested"))
    assert json.loads(to_json(config)) == json.loads(golden("config_settings_nested"))
    shuffled = PluginConfig(
        dict(reversed(config.settings.items())), enabled=False, auto_start=False
    )
    assert json.loads(to_json(shuffled)) == json.loads(golden("config_settings_nested"))
    obj = config.settings["object"]
    assert isinstance(obj, dict)
    nested = dict(reversed(list(obj.items())))
    assert '"object":{"Mid":"x","_u":"ü","alpha":' in to_json(PluginConfig({"object": nested}))


def test_float_corpus_survives_python_exactly() -> None:
    config = from_json(PluginConfig, golden("config_settings_float_corpus"))
    floats = config.settings["floats"]
    assert isinstance(floats, list)
    assert len(floats) == 447
    assert all(isinstance(number, float) for number in floats)
    text = json.loads(golden("config_settings_float_corpus"))["settings"]["floats"]
    assert floats == text
    assert to_json(config).encode("utf-8") == golden("config_settings_float_corpus")


def metadata_full() -> PluginMetadata:
    return (
        PluginMetadata("llm-openai", "OpenAI LLM", PluginType.LLM)
        .with_version("2.3.4-beta.1")
        .with_description('Chat completions — 支持中文, café, "quoted", tab\there')
        .with_priority(PluginPriority.HIGH)
        .with_dependency("storage-sqlite")
        .with_dependency("memory-default")
        .with_capability("chat")
        .with_capability("embedding")
        .with_author("Zoë Example <zoe@example.com>")
    )


PYTHON_BUILT: dict[str, Any] = {
    "plugin_type_llm": PluginType.LLM,
    "plugin_type_vectordb": PluginType.VECTOR_DB,
    "plugin_type_custom_empty": PluginType.custom(""),
    "plugin_type_custom_unicode": PluginType.custom('自定义/plugin "x" \\ é 😀\n'),
    "plugin_state_paused": PluginState.PAUSED,
    "plugin_state_error_boom": PluginState.error('boom: "quoted" é'),
    "plugin_state_error_control_chars": PluginState.error(
        "\x00\x01\x08\t\n\x0c\r\x1f\x7f\\/\u2028\ufeff😀"
    ),
    "plugin_priority_default": PluginPriority.NORMAL,
    "plugin_priority_critical": PluginPriority.CRITICAL,
    "metadata_full": metadata_full(),
    "metadata_new_defaults": PluginMetadata("echo-tool", "Echo Tool", PluginType.TOOL),
    "metadata_custom_type": PluginMetadata(
        "my-plugin",
        "My Plugin",
        PluginType.custom("my-kind"),
        priority=PluginPriority.CRITICAL,
        capabilities=["do-things"],
        author="",
    ),
    "config_default": PluginConfig(enabled=False, auto_start=False),
    "config_new": PluginConfig(),
    "config_settings_single_key": PluginConfig(
        {
            "payload": {
                "string": 'héllo "wörld"\n\t😀',
                # Written in any order; BTreeMap order on the wire: "Mid" < "_u" < "alpha".
                "object": {
                    "zeta": 1,
                    "alpha": {"inner": [1, 2, {"b": None, "a": True}]},
                    "_u": "ü",
                    "Mid": "x",
                },
                "array": [1, "two", 3.5, None, False, [], {}],
                "big_int": 2**64 - 1,
                "neg_int": -(2**63),
                "float": 3.14,
                "bool": True,
                "null": None,
            }
        },
        enabled=False,
        auto_start=False,
    ),
}


@pytest.mark.parametrize("case", sorted(PYTHON_BUILT))
def test_values_built_in_python_write_the_golden_bytes(case: str) -> None:
    value = PYTHON_BUILT[case]
    assert to_json(value).encode("utf-8") == golden(case)
    assert from_json(type(value), golden(case)) == value


@pytest.mark.parametrize("entry", ACCEPTS, ids=[entry["name"] for entry in ACCEPTS])
def test_accepts_and_refuses_like_serde(entry: dict[str, Any]) -> None:
    target = TYPES[entry["type"]]
    if not entry["accepted"]:
        with pytest.raises(SerializationError) as info:
            from_json(target, entry["input"])
        assert info.value.errors
        assert all(line.startswith("$") for line in info.value.errors)
        return
    written = to_json(from_json(target, entry["input"]))
    serde = entry["reserialized"]
    assert (written == serde) is (entry["name"] not in SERDE_MISROUNDS)
    assert within_one_ulp(json.loads(written), json.loads(serde))


@pytest.mark.parametrize("entry", ACCEPTS, ids=[entry["name"] for entry in ACCEPTS])
def test_verdict_is_the_same_for_utf8_bytes(entry: dict[str, Any]) -> None:
    target = TYPES[entry["type"]]
    raw = entry["input"].encode("utf-8")
    if entry["accepted"]:
        assert from_json(target, raw) == from_json(target, entry["input"])
    else:
        with pytest.raises(SerializationError):
            from_json(target, raw)


def test_misrounded_floats_are_one_ulp_apart_and_python_is_exact() -> None:
    (entry,) = [e for e in ACCEPTS if e["name"] in SERDE_MISROUNDS]
    ours = from_json(PluginConfig, entry["input"]).settings["k"]
    assert ours == [float(text) for text in entry["input"].split("[")[1].split("]")[0].split(",")]
    theirs = json.loads(entry["reserialized"])["settings"]["k"]
    assert ours != theirs
    assert within_one_ulp(ours, theirs)
