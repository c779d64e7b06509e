"""The fixtures of mofa-kernel's pytest plugin (re-exported by :mod:`mofa_kernel.testing`).

Only this module imports pytest; :mod:`mofa_kernel.testing` imports it when
pytest is installed, so that the conformance check works without pytest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import pytest

from ._metadata import PluginConfig

if TYPE_CHECKING:
    from ._manager import PluginManager

from ._lifecycle_run import config_of, instance_of, run_lifecycle
from ._sandbox import EntryPointSandbox, LifecycleRunner, ManagerFactory, RegisterPlugin

__all__ = [
    "mofa_entry_points",
    "mofa_isolation",
    "mofa_lifecycle",
    "mofa_manager",
    "mofa_manager_factory",
    "mofa_register",
]

_T = TypeVar("_T")

#: The kernel's own environment variables, cleared for every isolated test.
_KERNEL_VARIABLES: Final = ("MOFA_CONFIG", "MOFA_PLUGINS", "MOFA_TRACE")
_AUTOLOAD_OFF: Final = "MOFA_DISABLE_PLUGIN_AUTOLOAD"


@pytest.fixture
def mofa_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the kernel's environment variables and switch autoload off, for this test only."""
    for name in _KERNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(_AUTOLOAD_OFF, "1")


@pytest.fixture
def mofa_manager_factory(mofa_isolation: None) -> ManagerFactory:
    """Make isolated :class:`~mofa_kernel.PluginManager` objects (keyword arguments as for it)."""
    from ._manager import PluginManager

    def make(**options: Any) -> PluginManager:
        return PluginManager(**options)

    return make


async def _mofa_manager(mofa_manager_factory: ManagerFactory) -> AsyncIterator[PluginManager]:
    """An isolated :class:`~mofa_kernel.PluginManager`, shut down when the test ends."""
    async with mofa_manager_factory() as manager:
        yield manager


def _async_fixture(function: Callable[..., AsyncIterator[_T]], name: str) -> Any:
    """``function`` as a pytest-asyncio fixture, or one that says pytest-asyncio is missing."""
    try:
        from pytest_asyncio import fixture as asyncio_fixture
    except ImportError:

        def needs_pytest_asyncio() -> None:
            pytest.fail(
                f"the {name} fixture is async and needs pytest-asyncio (pip install "
                "pytest-asyncio); without it, use mofa_manager_factory and asyncio.run",
                pytrace=False,
            )

        needs_pytest_asyncio.__doc__ = function.__doc__
        return pytest.fixture(needs_pytest_asyncio, name=name)
    return asyncio_fixture(function, name=name)


mofa_manager = _async_fixture(_mofa_manager, "mofa_manager")


@pytest.fixture
def mofa_register(mofa_manager: PluginManager) -> RegisterPlugin:
    """Register a plugin on ``mofa_manager``: an instance, an AgentPlugin subclass or hooks."""

    def register(
        plugin: object,
        *,
        settings: Mapping[str, object] | None = None,
        config: PluginConfig | None = None,
        timeout: float | None = None,
    ) -> str:
        return mofa_manager.register(
            instance_of(plugin), config=config_of(settings, config), timeout=timeout
        )

    return register


@pytest.fixture
def mofa_lifecycle(mofa_isolation: None) -> LifecycleRunner:
    """:func:`run_lifecycle`: drive a plugin through its whole lifecycle in a fresh manager."""
    return run_lifecycle


@pytest.fixture
def mofa_entry_points(
    mofa_isolation: None,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntryPointSandbox]:
    """An :class:`EntryPointSandbox`: fake installed entry points, undone after the test."""
    sandbox = EntryPointSandbox(tmp_path_factory.mktemp("mofa-site"), monkeypatch)
    yield sandbox
    sandbox.close()
