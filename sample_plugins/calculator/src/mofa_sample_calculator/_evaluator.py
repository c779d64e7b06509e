"""A safe arithmetic evaluator: ``ast`` parses the expression, a small tree walker computes it.

Nothing is ever passed to ``eval``. Only numbers, ``+ - * / // % **``,
parentheses, unary signs, the functions in :data:`FUNCTIONS` and the names in
:data:`CONSTANTS` (plus caller-given variables) are accepted. Input length,
nesting depth and the size of every intermediate result are bounded, so no
expression can make the evaluator run for long or exhaust memory.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INPUT_LENGTH",
    "MAX_INT_BITS",
    "CalculationError",
    "Number",
    "evaluate",
    "format_number",
]

Number: TypeAlias = int | float

#: Longest accepted expression, in characters.
MAX_INPUT_LENGTH: Final = 1000
#: Deepest accepted syntax tree (each operator, call or sign adds a level).
MAX_DEPTH: Final = 100
#: Largest accepted integer result, in bits (about 1,233 decimal digits).
MAX_INT_BITS: Final = 4096
#: Largest accepted ``ndigits`` of ``round(x, ndigits)``, either sign.
_MAX_ROUND_DIGITS: Final = 100

CONSTANTS: Final[Mapping[str, float]] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculationError(ValueError):
    """An expression that cannot be evaluated.

    ``column`` is the 1-based position in the input that the error is about,
    or ``None`` when it concerns the whole input.
    """

    def __init__(self, problem: str, column: int | None = None) -> None:
        super().__init__(problem if column is None else f"{problem} at column {column}")
        self.problem = problem
        self.column = column


def _round(value: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int):
        raise ValueError("ndigits must be an integer")
    if abs(ndigits) > _MAX_ROUND_DIGITS:
        raise ValueError(f"ndigits must be between -{_MAX_ROUND_DIGITS} and {_MAX_ROUND_DIGITS}")
    return round(value, ndigits)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


#: name -> (function, fewest arguments, most arguments or None for any number).
FUNCTIONS: Final[Mapping[str, tuple[Callable[..., Number], int, int | None]]] = {
    "abs": (abs, 1, 1),
    "acos": (math.acos, 1, 1),
    "asin": (math.asin, 1, 1),
    "atan": (math.atan, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "cos": (math.cos, 1, 1),
    "exp": (math.exp, 1, 1),
    "floor": (math.floor, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "max": (max, 1, None),
    "min": (min, 1, None),
    "round": (_round, 1, 2),
    "sin": (math.sin, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "tan": (math.tan, 1, 1),
}

_OPERATOR_SYMBOLS: Final[Mapping[type[ast.AST], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}

_LITERAL_KINDS: Final[Mapping[type, str]] = {
    bool: "booleans",
    bytes: "bytes",
    complex: "imaginary numbers",
    str: "strings",
    type(None): "None values",
}

_UNSUPPORTED: Final[Mapping[type[ast.AST], str]] = {
    ast.Attribute: "attribute access is not supported",
    ast.BoolOp: "'and'/'or' are not supported",
    ast.Compare: "comparisons are not supported",
    ast.Dict: "dictionaries are not supported",
    ast.IfExp: "conditional expressions are not supported",
    ast.Lambda: "lambda is not supported",
    ast.List: "lists are not supported",
    ast.Set: "sets are not supported",
    ast.Subscript: "indexing is not supported",
    ast.Tuple: "tuples are not supported",
}


def evaluate(expression: str, variables: Mapping[str, Number] | None = None) -> Number:
    """Compute ``expression`` and return an ``int`` or a ``float``.

    ``variables`` gives extra names (``{"x": 2}``); they may not shadow a
    function or a constant. Raises :class:`CalculationError` saying what is
    wrong and at which column.
    """
    names = _check_variables(variables or {})
    text = expression.strip()
    # Columns are reported against the caller's input, leading blanks included.
    offset = len(expression) - len(expression.lstrip())
    if not text:
        raise CalculationError("the expression is empty")
    if len(text) > MAX_INPUT_LENGTH:
        raise CalculationError(
            f"the expression is too long ({len(text)} characters, at most {MAX_INPUT_LENGTH})"
        )
    for index, char in enumerate(text):
        if char in "\r\n":
            raise CalculationError("the expression must be on one line", offset + index + 1)
    tree = _parse(text, offset)
    _check_depth(tree.body, text, offset)
    return _Walker(text, offset, names).value(tree.body)


def format_number(value: Number, precision: int | None = None) -> str:
    """Render a result for people: integers exactly, floats in their shortest form.

    With ``precision``, floats are first rounded to that many decimals.
    """
    if isinstance(value, int):
        return str(value)
    if precision is not None:
        value = round(value, precision)
    # round() can give -0.0 for small negatives; nobody wants to read that.
    return repr(value + 0.0)


def _check_variables(variables: Mapping[str, Number]) -> dict[str, Number]:
    names: dict[str, Number] = dict(CONSTANTS)
    for name, value in variables.items():
        if name in CONSTANTS or name in FUNCTIONS:
            raise CalculationError(f"variable name {name!r} is reserved for a built-in")
        if not name.isidentifier():
            raise CalculationError(f"variable name {name!r} is not an identifier")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CalculationError(f"variable {name!r} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise CalculationError(f"variable {name!r} must be a finite number, got {value!r}")
        names[name] = value
    return names


def _parse(text: str, offset: int) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # Python reports 0 or a position past the end when the input stops short.
        position = exc.offset if exc.offset and 0 < exc.offset <= len(text) else len(text) + 1
        raise CalculationError(exc.msg or "invalid syntax", offset + position) from None
    except (RecursionError, MemoryError):
        raise CalculationError("the expression is nested too deeply") from None


def _column(node: ast.AST, text: str, offset: int) -> int:
    # ast positions are UTF-8 byte offsets; people count characters.
    byte_offset: int = getattr(node, "col_offset", 0)
    return offset + len(text.encode()[:byte_offset].decode(errors="replace")) + 1


def _check_depth(root: ast.AST, text: str, offset: int) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CalculationError(
                f"the expression is nested too deeply (more than {MAX_DEPTH} levels)",
                _column(node, text, offset),
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _checked(value: Number, column: int | None) -> Number:
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise _too_large(column)
    elif not math.isfinite(value):
        raise CalculationError("the result is too large for a float", column)
    return value


class _Walker:
    """Computes a checked syntax tree, node by node."""

    def __init__(self, text: str, offset: int, names: Mapping[str, Number]) -> None:
        self._text = text
        self._offset = offset
        self._names = names

    def _fail(self, problem: str, node: ast.AST) -> CalculationError:
        return CalculationError(problem, _column(node, self._text, self._offset))

    def value(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        problem = _UNSUPPORTED.get(type(node), f"{type(node).__name__} is not supported")
        raise self._fail(problem, node)

    def _constant(self, node: ast.Constant) -> Number:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = _LITERAL_KINDS.get(type(value), f"{type(value).__name__} values")
            raise self._fail(f"{kind} are not supported", node)
        return _checked(value, _column(node, self._text, self._offset))

    def _name(self, node: ast.Name) -> Number:
        if node.id in self._names:
            return self._names[node.id]
        if node.id in FUNCTIONS:
            raise self._fail(f"{node.id} is a function; call it as {node.id}(...)", node)
        raise self._fail(f"unknown name {node.id!r}", node)

    def _unary(self, node: ast.UnaryOp) -> Number:
        operand = self.value(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
        raise self._fail(f"operator {_OPERATOR_SYMBOLS[type(node.op)]!r} is not supported", node)

    def _binary(self, node: ast.BinOp) -> Number:
        op = type(node.op)
        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow):
            hint = " (use ** for powers)" if op is ast.BitXor else ""
            symbol = _OPERATOR_SYMBOLS.get(op, op.__name__)
            raise self._fail(f"operator {symbol!r} is not supported{hint}", node)
        left = self.value(node.left)
        right = self.value(node.right)
        column = _column(node, self._text, self._offset)
        try:
            if op is ast.Add:
                result = left + right
            elif op is ast.Sub:
                result = left - right
            elif op is ast.Mult:
                result = _multiply(left, right, column)
            elif op is ast.Pow:
                result = _power(left, right, column)
            elif op is ast.Div:
                result = left / right
            elif op is ast.FloorDiv:
                result = left // right
            else:
                result = left % right
        except ZeroDivisionError:
            if op is ast.Pow:
                raise self._fail("zero cannot be raised to a negative power", node) from None
            what = "modulo" if op is ast.Mod else "division"
            raise self._fail(f"{what} by zero", node.right) from None
        except OverflowError:
            raise CalculationError("the result is too large for a float", column) from None
        return _checked(result, column)

    def _call(self, node: ast.Call) -> Number:
        if not isinstance(node.func, ast.Name):
            raise self._fail("only the built-in functions can be called", node)
        name = node.func.id
        if name not in FUNCTIONS:
            known = name in self._names
            raise self._fail(
                f"{name} is not a function" if known else f"unknown function {name!r}", node
            )
        function, fewest, most = FUNCTIONS[name]
        if node.keywords:
            raise self._fail(f"{name}() takes no keyword arguments", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self._fail("argument unpacking is not supported", arg)
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            raise self._fail(f"{name}() takes {_arity(fewest, most)}, got {count}", node)
        args = [self.value(arg) for arg in node.args]
        column = _column(node, self._text, self._offset)
        try:
            result = function(*args)
        except OverflowError:
            raise CalculationError(f"{name}(): the result is too large", column) from None
        except (ValueError, TypeError) as exc:
            raise CalculationError(f"{name}(): {exc}", column) from None
        return _checked(result, column)


def _multiply(left: Number, right: Number, column: int) -> Number:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
    ):
        raise _too_large(column)
    return left * right


def _power(base: Number, exponent: Number, column: int) -> Number:
    # Refuse before computing: 9 ** 10**9 would otherwise run for minutes.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise _too_large(column)
    result = base**exponent
    if isinstance(result, complex):
        raise CalculationError("the result is not a real number", column)
    return result


def _too_large(column: int | None) -> CalculationError:
    return CalculationError(f"the result is too large (more than {MAX_INT_BITS} bits)", column)


def _arity(fewest: int, most: int | None) -> str:
    if most is None:
        return f"at least {fewest} argument{'s' if fewest != 1 else ''}"
    if fewest == most:
        return f"{fewest} argument{'s' if fewest != 1 else ''}"
    return f"{fewest} to {most} arguments"
