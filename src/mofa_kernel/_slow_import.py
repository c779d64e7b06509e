"""A warning while a plugin's import is still running, for imports that take seconds.

Discovery imports each enabled plugin in turn; one whose module does slow
work at import time (a network call, a model loaded at module level) holds
up ``discover()`` and every command with it. :class:`ImportWatch` starts a
timer around the import: past the threshold it logs a warning naming the
plugin while the import is still running (the import itself is not
interrupted: Python cannot stop it safely), and once the import ends it
logs how long it took.

The threshold is :data:`DEFAULT_THRESHOLD` seconds, or the number of
seconds in ``MOFA_SLOW_IMPORT_WARNING`` (``0`` or ``off`` turns the warning off).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["DEFAULT_THRESHOLD", "ENV_SLOW_IMPORT", "ImportWatch", "slow_import_threshold"]

#: Seconds an import may take before it is reported.
DEFAULT_THRESHOLD: Final = 3.0
#: The environment variable that sets the threshold in seconds (``0`` or ``off``: never).
ENV_SLOW_IMPORT: Final = "MOFA_SLOW_IMPORT_WARNING"

_logger = logging.getLogger("mofa_kernel")


def slow_import_threshold(environ: Mapping[str, str] | None = None) -> float | None:
    """The threshold in seconds from the environment, ``None`` when the warning is off.
    An unreadable value keeps the default (and says so)."""
    value = (os.environ if environ is None else environ).get(ENV_SLOW_IMPORT)
    if value is None or not value.strip():
        return DEFAULT_THRESHOLD
    if value.strip().lower() in ("0", "off", "no", "false"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        _logger.warning(
            "%s=%r is not a number of seconds; using %s", ENV_SLOW_IMPORT, value, DEFAULT_THRESHOLD
        )
        return DEFAULT_THRESHOLD
    return seconds


class ImportWatch:
    """Report ``what`` (``"plugin 'x' from dist 1.0 (x:P)"``) through ``report`` (default: a
    warning on the ``mofa_kernel`` logger) if the ``with`` block is still running after
    ``threshold`` seconds, and again with the total time when it ends.

    A class rather than a generator, so that an exception from the import carries no frame
    of this module in its traceback (discovery names the plugin's own frame)."""

    def __init__(
        self,
        what: str,
        *,
        threshold: float | None = DEFAULT_THRESHOLD,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self._what = what
        self._threshold = threshold
        self._say = report if report is not None else _logger.warning
        self._warned = threading.Event()
        self._timer: threading.Timer | None = None
        self._started = 0.0

    def _still_running(self) -> None:
        self._warned.set()
        self._say(
            f"{self._what}: still importing after {self._threshold:g} s (discovery waits for it)"
        )

    def __enter__(self) -> None:
        self._started = time.monotonic()
        if self._threshold is not None:
            self._timer = threading.Timer(self._threshold, self._still_running)
            self._timer.daemon = True
            self._timer.name = "mofa-kernel slow-import watch"
            self._timer.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._warned.is_set():
            self._say(f"{self._what}: imported after {time.monotonic() - self._started:.1f} s")
