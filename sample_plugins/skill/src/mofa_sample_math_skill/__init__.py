"""mofa-sample-math-skill: a skill plugin that uses the calculator and memory plugins.

The entry point ``math-skill`` (group ``mofa.plugins``) names
:class:`MathSkillPlugin`. It shows dependencies (the kernel starts
``calculator`` and ``memory`` first), ordering, and the shared state through
which plugins reach one another without importing each other.
"""

from __future__ import annotations

from ._plugin import (
    CALCULATOR_KEY,
    MEMORY_KEY,
    VARIABLE_PREFIX,
    Evaluate,
    MathSkillPlugin,
    Memory,
    __version__,
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
