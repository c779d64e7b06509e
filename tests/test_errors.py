"""The exception hierarchy: one base class, builtin meanings, and the facts each error carries."""

from __future__ import annotations

import pickle

import pytest

import mofa_kernel
from mofa_kernel import (
    DependencyCycleError,
    DependencyError,
    DiscoveryError,
    InvalidStateError,
    MissingDependencyError,
    PluginConfigError,
    PluginError,
    PluginExecutionError,
    PluginInitError,
    PluginLifecycleError,
    PluginLoadError,
    PluginNotFoundError,
    PluginState,
    PluginTimeoutError,
    SerializationError,
)

#: Every error class and what it must also be.
HIERARCHY: dict[type[PluginError], tuple[type[BaseException], ...]] = {
    PluginError: (Exception,),
    PluginLoadError: (PluginError,),
    PluginInitError: (PluginError,),
    PluginExecutionError: (PluginError,),
    PluginLifecycleError: (PluginError,),
    PluginTimeoutError: (PluginError, TimeoutError),
    PluginNotFoundError: (PluginError, KeyError),
    InvalidStateError: (PluginError,),
    PluginConfigError: (PluginError, ValueError),
    SerializationError: (PluginError, ValueError),
    DiscoveryError: (PluginError,),
    DependencyError: (PluginError,),
    MissingDependencyError: (DependencyError,),
    DependencyCycleError: (DependencyError,),
}


def make(cls: type[PluginError]) -> PluginError:
    """An instance of ``cls`` about plugin ``calc``."""
    if cls is SerializationError:
        return SerializationError(["$.priority: bad"], plugin_id="calc")
    return cls("something failed", plugin_id="calc")


def test_every_exported_error_is_listed() -> None:
    exported = {
        getattr(mofa_kernel, name)
        for name in mofa_kernel.__all__
        if name.endswith("Error") and isinstance(getattr(mofa_kernel, name), type)
    }
    assert exported == set(HIERARCHY)


@pytest.mark.parametrize(("cls", "bases"), HIERARCHY.items())
def test_hierarchy(cls: type[PluginError], bases: tuple[type[BaseException], ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, PluginError)


@pytest.mark.parametrize("cls", HIERARCHY)
def test_every_class_carries_plugin_id(cls: type[PluginError]) -> None:
    error = make(cls)
    assert error.plugin_id == "calc"
    assert cls.__module__ == "mofa_kernel"


@pytest.mark.parametrize("cls", [c for c in HIERARCHY if c is not SerializationError])
def test_message_is_the_str_and_optional_facts_default_to_none(cls: type[PluginError]) -> None:
    error = cls("plugin 'calc': it broke")
    assert str(error) == "plugin 'calc': it broke"
    assert error.message == "plugin 'calc': it broke"
    assert error.plugin_id is None
    assert error.hook is None


def test_where_it_came_from() -> None:
    error = PluginLoadError(
        "cannot import",
        plugin_id="calc",
        hook="load",
        distribution="mofa-calculator",
        entry_point="calculator = mofa_calculator:Calculator",
    )
    assert error.hook == "load"
    assert error.distribution == "mofa-calculator"
    assert error.entry_point == "calculator = mofa_calculator:Calculator"


def test_timeout_is_a_timeout_error() -> None:
    error = PluginTimeoutError("start took too long", plugin_id="calc", hook="start", timeout=2.5)
    with pytest.raises(TimeoutError):
        raise error
    assert error.timeout == 2.5
    assert error.hook == "start"
    assert PluginTimeoutError("x").timeout is None


def test_not_found_is_a_key_error_whose_str_is_the_message() -> None:
    error = PluginNotFoundError("no plugin 'calc' is registered", plugin_id="calc")
    with pytest.raises(KeyError):
        raise error
    assert str(error) == "no plugin 'calc' is registered"
    assert repr(KeyError("x")) != str(error)


def test_invalid_state_has_expected_and_actual() -> None:
    error = InvalidStateError(
        "cannot execute 'calc': it is Loaded, not Running",
        plugin_id="calc",
        hook="execute",
        expected=[PluginState.RUNNING],
        actual=PluginState.LOADED,
    )
    assert error.expected == (PluginState.RUNNING,)
    assert error.actual == PluginState.LOADED
    bare = InvalidStateError("x")
    assert bare.expected == ()
    assert bare.actual is None


@pytest.mark.parametrize("cls", [PluginConfigError, SerializationError])
def test_value_errors(cls: type[PluginError]) -> None:
    with pytest.raises(ValueError, match=r"something failed|\$\.priority"):
        raise make(cls)


def test_serialization_error_lists_every_field() -> None:
    error = SerializationError(["$.priority: unknown variant", "$.settings.port: expected int"])
    assert error.errors == ("$.priority: unknown variant", "$.settings.port: expected int")
    assert str(error) == "$.priority: unknown variant\n$.settings.port: expected int"
    assert error.plugin_id is None


@pytest.mark.parametrize("cls", [DependencyError, MissingDependencyError, DependencyCycleError])
def test_dependency_errors_carry_the_chain(cls: type[DependencyError]) -> None:
    error = cls("skill -> calculator -> skill", plugin_id="skill", chain=["skill", "calculator"])
    assert error.chain == ("skill", "calculator")
    assert isinstance(error.chain, tuple)
    assert cls("x").chain == ()


def test_cycle_chain_starts_and_ends_on_the_same_id() -> None:
    error = DependencyCycleError(
        "dependency cycle: a -> b -> a", plugin_id="a", chain=("a", "b", "a")
    )
    assert error.chain[0] == error.chain[-1] == "a"


def test_one_except_clause_catches_them_all() -> None:
    caught = []
    for cls in HIERARCHY:
        try:
            raise make(cls)
        except PluginError as error:
            caught.append(type(error))
    assert caught == list(HIERARCHY)


@pytest.mark.parametrize(
    "error",
    [
        PluginExecutionError("bad input", plugin_id="calc", hook="execute"),
        PluginNotFoundError("no plugin 'x'", plugin_id="x"),
    ],
)
def test_str_survives_raise_from(error: PluginError) -> None:
    def fail() -> None:
        try:
            raise ValueError("inner")
        except ValueError as inner:
            raise error from inner

    with pytest.raises(PluginError) as info:
        fail()
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value) == error.message


def test_pickle_keeps_the_message() -> None:
    error = PluginLoadError("cannot import")
    restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert str(restored) == "cannot import"
    assert type(restored) is PluginLoadError
