"""mofa-sample-calculator: a safe arithmetic evaluator as a mofa-kernel Tool plugin.

The entry point ``calculator`` (group ``mofa.plugins``) names
:class:`CalculatorPlugin`. The evaluator is usable on its own too::

    >>> from mofa_sample_calculator import evaluate
    >>> evaluate("2 * (3 + 4)")
    14
"""

from __future__ import annotations

from ._evaluator import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_INPUT_LENGTH,
    MAX_INT_BITS,
    CalculationError,
    Number,
    evaluate,
    format_number,
)
from ._plugin import EVALUATE_KEY, CalculatorPlugin, __version__

__all__ = [
    "CONSTANTS",
    "EVALUATE_KEY",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INPUT_LENGTH",
    "MAX_INT_BITS",
    "CalculationError",
    "CalculatorPlugin",
    "Number",
    "__version__",
    "evaluate",
    "format_number",
]
