"""The math skill: remembers named results and computes with them, through other plugins.

It never imports the calculator or the memory plugin. It declares them as
dependencies, so the kernel starts them first, and reaches them through the
shared state where each publishes itself when it starts:

- ``"calculator.evaluate"``: ``evaluate(expression, variables) -> int | float``;
- ``"memory.api"``: an object with async ``get``, ``set``, ``delete``, ``keys``, ``append``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from mofa_kernel import (
    AgentPlugin,
    PluginContext,
    PluginExecutionError,
    PluginMetadata,
    PluginType,
)

__all__ = [
    "CALCULATOR_KEY",
    "MEMORY_KEY",
    "VARIABLE_PREFIX",
    "Evaluate",
    "MathSkillPlugin",
    "Memory",
    "__version__",
]

__version__ = "0.1.0"

CALCULATOR_KEY: Final = "calculator.evaluate"
MEMORY_KEY: Final = "memory.api"
#: Memory keys of remembered variables: this prefix, then the variable's name.
VARIABLE_PREFIX: Final = "math-skill.var."

Number = int | float
#: What the calculator publishes under ``"calculator.evaluate"``.
Evaluate = Callable[[str, Mapping[str, Number]], Number]


class Memory(Protocol):
    """The part of what the memory plugin publishes under ``"memory.api"`` that this skill uses."""

    async def get(self, key: str, default: Any = None) -> Any: ...
    async def set(self, key: str, value: Any) -> None: ...
    async def delete(self, key: str) -> bool: ...
    async def keys(self, prefix: str = "") -> list[str]: ...
    async def append(self, conversation: str, role: str, content: str) -> int: ...


_REMEMBER: Final = re.compile(r"remember\s+(?P<name>\w+)\s*=\s*(?P<expression>.+)", re.I)
_RECALL: Final = re.compile(r"recall\s+(?P<name>\w+)", re.I)
_FORGET: Final = re.compile(r"forget\s+(?P<name>\w+)", re.I)
_VARIABLES: Final = re.compile(r"variables", re.I)
_QUESTION: Final = re.compile(r"(?:what\s+is|what's)\s+(?P<expression>.+?)\s*\??", re.I)


class MathSkillPlugin(AgentPlugin):
    """Understands a few sentences about arithmetic:

    - ``remember x = 2 * 21`` computes the value and keeps it in memory;
    - ``recall x`` and ``forget x``; ``variables`` lists what is remembered;
    - ``what is 3 * (x + 1)?`` (or just ``3 * (x + 1)``) computes with the
      remembered variables.

    Every exchange is also appended to a conversation in memory. Settings:
    ``conversation``, its name (default ``"math-skill"``).
    """

    metadata = PluginMetadata(
        id="math-skill",
        name="Math skill",
        plugin_type=PluginType.SKILL,
        version=__version__,
        description="Remembers named results and computes with them, via calculator and memory.",
        dependencies=("calculator", "memory"),
        capabilities=("arithmetic", "variables"),
    )

    ctx: PluginContext  # set by load()

    def __init__(self) -> None:
        self.conversation = "math-skill"
        self.answered = 0

    async def load(self, ctx: PluginContext) -> None:
        await super().load(ctx)
        self.ctx = ctx

    async def init_plugin(self) -> None:
        self.conversation = self.ctx.config.get_string("conversation") or self.conversation

    async def start(self) -> None:
        # The kernel starts dependencies first, so both must be published by now.
        for key in (CALCULATOR_KEY, MEMORY_KEY):
            if await self.ctx.get_state(key) is None:
                raise RuntimeError(f"nothing is published under {key!r} in the shared state")

    async def execute(self, input: str) -> str:
        try:
            reply = await self._answer(input.strip())
            memory = await self._memory()
        except ValueError as exc:
            raise PluginExecutionError(str(exc), plugin_id=self.plugin_id) from None
        await memory.append(self.conversation, "user", input)
        await memory.append(self.conversation, "assistant", reply)
        self.answered += 1
        return reply

    async def _answer(self, text: str) -> str:
        if match := _REMEMBER.fullmatch(text):
            name = match["name"]
            value = await self._compute(match["expression"])
            # The calculator refuses variables that would shadow its own names (pi, sqrt, ...).
            (await self._evaluate())(name, {name: value})
            await (await self._memory()).set(VARIABLE_PREFIX + name, value)
            return f"{name} = {_format(value)}"
        if match := _RECALL.fullmatch(text):
            name = match["name"]
            variables = await self._variables()
            if name not in variables:
                raise ValueError(f"nothing is remembered as {name!r}")
            return f"{name} = {_format(variables[name])}"
        if match := _FORGET.fullmatch(text):
            name = match["name"]
            if not await (await self._memory()).delete(VARIABLE_PREFIX + name):
                raise ValueError(f"nothing is remembered as {name!r}")
            return f"forgot {name}"
        if _VARIABLES.fullmatch(text):
            variables = await self._variables()
            listed = ", ".join(f"{k} = {_format(v)}" for k, v in sorted(variables.items()))
            return listed or "nothing is remembered yet"
        match = _QUESTION.fullmatch(text)
        expression = match["expression"] if match else text
        return f"{expression} = {_format(await self._compute(expression))}"

    async def _compute(self, expression: str) -> Number:
        evaluate = await self._evaluate()
        try:
            return evaluate(expression, await self._variables())
        except ValueError as exc:
            # The calculator's columns count from the start of the expression.
            raise ValueError(f"in {expression!r}: {exc}") from None

    async def _variables(self) -> dict[str, Number]:
        memory = await self._memory()
        variables: dict[str, Number] = {}
        for key in await memory.keys(VARIABLE_PREFIX):
            value = await memory.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                variables[key.removeprefix(VARIABLE_PREFIX)] = value
        return variables

    # Looked up on every use, not kept from start: a dependency that is
    # hot-reloaded publishes a new object, and a stopped one publishes none.
    async def _evaluate(self) -> Evaluate:
        evaluate: Evaluate | None = await self.ctx.get_state(CALCULATOR_KEY)
        if evaluate is None:
            raise ValueError("the calculator is not running")
        return evaluate

    async def _memory(self) -> Memory:
        memory: Memory | None = await self.ctx.get_state(MEMORY_KEY)
        if memory is None:
            raise ValueError("the memory is not running")
        return memory

    def stats(self) -> dict[str, Any]:
        return {"answered": self.answered}


def _format(value: Number) -> str:
    return str(value) if isinstance(value, int) else f"{value:.12g}"
