"""A throwaway virtualenv with mofa-kernel and real plugin distributions installed by pip.

One virtualenv per test session: the project's wheel is built once, the test
plugin distributions are written into a temporary folder and built into the
same wheelhouse in one pip call, and tests switch sets of them in and out
with ``pip install`` / ``pip uninstall``. The ``mofa-kernel`` console script
of that virtualenv is what the tests run.
"""

from __future__ import annotations

import pytest
from _kernel_venv import GOOD, TROUBLED, KernelVenv, make_kernel_venv


@pytest.fixture(scope="session")
def kernel_venv(tmp_path_factory: pytest.TempPathFactory) -> KernelVenv:
    return make_kernel_venv(tmp_path_factory.mktemp("kernel-venv"))


@pytest.fixture
def good_venv(kernel_venv: KernelVenv) -> KernelVenv:
    """Only the healthy distributions installed."""
    kernel_venv.uninstall(*TROUBLED)
    kernel_venv.install(*GOOD)
    kernel_venv.clear_markers()
    return kernel_venv


@pytest.fixture
def troubled_venv(kernel_venv: KernelVenv) -> KernelVenv:
    """The healthy distributions and every troubled one installed beside them."""
    kernel_venv.install(*GOOD, *TROUBLED)
    kernel_venv.clear_markers()
    return kernel_venv
