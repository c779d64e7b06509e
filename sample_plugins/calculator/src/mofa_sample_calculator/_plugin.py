"""The calculator as a class-style mofa-kernel plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from mofa_kernel import (
    AgentPlugin,
    PluginConfigError,
    PluginContext,
    PluginExecutionError,
    PluginMetadata,
    PluginType,
)

from ._evaluator import CalculationError, Number, evaluate, format_number

__all__ = ["EVALUATE_KEY", "CalculatorPlugin", "CalculatorSettings", "__version__"]

__version__ = "0.1.0"

#: Shared-state key under which a running calculator publishes its evaluate function:
#: ``evaluate(expression: str, variables: Mapping[str, int | float] | None = None) -> int | float``,
#: raising ``ValueError`` (a :class:`CalculationError`) for a bad expression.
EVALUATE_KEY: Final = "calculator.evaluate"

_MAX_PRECISION: Final = 17


@attrs.frozen
class CalculatorSettings:
    """The ``[plugins.calculator.settings]`` table."""

    #: Decimals that float results are rounded to (0-17); ``None``: shortest exact form.
    precision: int | None = None


class CalculatorPlugin(AgentPlugin):
    """Evaluates arithmetic expressions such as ``2 * (3 + 4)`` or ``sqrt(2) / 2``.

    Settings: ``precision`` (optional integer, 0-17), the number of decimals
    that float results are rounded to.
    """

    metadata = PluginMetadata(
        id="calculator",
        name="Calculator",
        plugin_type=PluginType.TOOL,
        version=__version__,
        description="A safe arithmetic evaluator: numbers, + - * / // % **, math functions.",
        capabilities=("arithmetic",),
    )

    settings_type = CalculatorSettings
    ctx: PluginContext  # set by load()

    def __init__(self) -> None:
        self.precision: int | None = None
        self.evaluations = 0
        self.failures = 0

    async def load(self, ctx: PluginContext) -> None:
        await super().load(ctx)
        self.ctx = ctx

    async def init_plugin(self) -> None:
        settings: CalculatorSettings = self.ctx.settings  # types checked by the kernel
        precision = settings.precision
        if precision is not None and not 0 <= precision <= _MAX_PRECISION:
            raise PluginConfigError(
                f"settings.precision: expected 0 to {_MAX_PRECISION}, got {precision}",
                plugin_id=self.plugin_id,
            )
        self.precision = precision

    async def start(self) -> None:
        await self.ctx.set_state(EVALUATE_KEY, self.evaluate)

    async def stop(self) -> None:
        await self.ctx.remove_state(EVALUATE_KEY)

    def evaluate(self, expression: str, variables: Mapping[str, Number] | None = None) -> Number:
        """Compute ``expression``, counting successes and failures for :meth:`stats`."""
        try:
            result = evaluate(expression, variables)
        except CalculationError:
            self.failures += 1
            raise
        self.evaluations += 1
        return result

    async def execute(self, input: str) -> str:
        try:
            return format_number(self.evaluate(input), self.precision)
        except CalculationError as exc:
            raise PluginExecutionError(str(exc), plugin_id=self.plugin_id) from None

    def stats(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "failures": self.failures}
