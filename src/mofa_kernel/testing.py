"""Testing mofa-kernel plugins: pytest fixtures and a conformance check.

mofa-kernel registers this module as a pytest plugin (entry-point group
``pytest11``, plugin name ``mofa_kernel``), so wherever mofa-kernel is
installed a test can ask for these fixtures by name:

``mofa_manager``
    An isolated :class:`~mofa_kernel.PluginManager`, shut down after the test.
    It is an async fixture: it needs pytest-asyncio.
``mofa_manager_factory``
    Makes isolated managers, for tests that run their own event loop.
``mofa_register``
    Registers a plugin (an instance, an ``AgentPlugin`` subclass or a module of
    hooks) on ``mofa_manager``, with its settings.
``mofa_entry_points``
    An :class:`EntryPointSandbox`: entry points that discovery sees as
    installed, without installing anything.
``mofa_lifecycle``
    :func:`run_lifecycle`: drives a plugin through its whole lifecycle.
``mofa_isolation``
    What the others stand on: the kernel's environment variables are cleared
    and autoload is off (``MOFA_DISABLE_PLUGIN_AUTOLOAD=1``), so
    ``discover()`` imports nothing that the test did not ask for.

Everything a fixture changes (environment, ``sys.path``, modules imported
from fake distributions) is put back when the test ends. :func:`check_plugin`
and :func:`assert_conforms` check one plugin against the contract that every
plugin must meet. ``pytest -p no:mofa_kernel`` switches the pytest plugin off.
"""

from __future__ import annotations

import importlib.util

from ._conformance import ConformanceReport, assert_conforms, check_plugin
from ._lifecycle_run import LifecycleRun, run_lifecycle
from ._sandbox import EntryPointSandbox, LifecycleRunner, ManagerFactory, RegisterPlugin

# The fixtures need pytest; the conformance check and the sandbox do not. This module is
# the pytest plugin (entry point ``pytest11``): pytest finds the fixtures among its names.
if importlib.util.find_spec("pytest") is not None:
    from ._pytest_plugin import (  # noqa: F401 - fixtures, found by pytest by name
        mofa_entry_points,
        mofa_isolation,
        mofa_lifecycle,
        mofa_manager,
        mofa_manager_factory,
        mofa_register,
    )

# Shown (in reprs and the docs) under the name users import them by.
for _cls in (
    ConformanceReport,
    EntryPointSandbox,
    LifecycleRun,
    LifecycleRunner,
    ManagerFactory,
    RegisterPlugin,
):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "ConformanceReport",
    "EntryPointSandbox",
    "LifecycleRun",
    "LifecycleRunner",
    "ManagerFactory",
    "RegisterPlugin",
    "assert_conforms",
    "check_plugin",
    "run_lifecycle",
]
