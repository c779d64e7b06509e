"""Suite-wide test settings: hypothesis profiles, a private discovery cache and data folder.

``MOFA_TEST_QUICK=1`` (what CI sets) selects the ``quick`` profile with few
examples; ``HYPOTHESIS_PROFILE=thorough`` runs many more. No profile has a
deadline: the first call of a code path can be slow on a loaded machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("quick", max_examples=15, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(
    "quick"
    if os.environ.get("MOFA_TEST_QUICK") == "1"
    else os.environ.get("HYPOTHESIS_PROFILE", "dev")
)


@pytest.fixture(autouse=True, scope="session")
def _private_discovery_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the suite's discovery cache out of the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("mofa-cache")
    saved = os.environ.get("MOFA_CACHE_DIR")
    os.environ["MOFA_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("MOFA_CACHE_DIR", None)
    else:
        os.environ["MOFA_CACHE_DIR"] = saved


@pytest.fixture(autouse=True, scope="session")
def _private_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep what sample plugins store by default (the memory database) out of ~/.local/share."""
    folder = tmp_path_factory.mktemp("xdg-data")
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved
