"""The evaluator on its own: results, errors with their columns, and the bounds."""

from __future__ import annotations

import math
import random

import pytest
from mofa_sample_calculator import (
    MAX_DEPTH,
    MAX_INPUT_LENGTH,
    MAX_INT_BITS,
    CalculationError,
    evaluate,
    format_number,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 * (3 + 4)", 14),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-3 ** 2", -9),
        ("(-3) ** 2", 9),
        ("--4", 4),
        ("+5", 5),
        ("1.5e3 + 0.5", 1500.5),
        ("1_000 * 3", 3000),
        ("  42  ", 42),
        ("sqrt(16)", 4.0),
        ("abs(-3)", 3),
        ("round(2.675, 2)", 2.67),
        ("round(7.5)", 8),
        ("min(3, 1, 2)", 1),
        ("max(1, 2.5)", 2.5),
        ("log(8, 2)", 3.0),
        ("log10(1000)", 3.0),
        ("floor(2.7) + ceil(2.1)", 5),
        ("cos(0) + sin(0)", 1.0),
    ],
)
def test_computes(expression: str, expected: float) -> None:
    result = evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


def test_knows_pi_and_e() -> None:
    assert evaluate("pi") == math.pi
    assert evaluate("e ** 2") == math.e**2
    assert evaluate("tau / 2") == math.pi


def test_integers_stay_exact() -> None:
    assert evaluate("2 ** 100 + 1") == 2**100 + 1
    assert evaluate("12345678901234567890 * 98765432109876543210") == (
        12345678901234567890 * 98765432109876543210
    )


def test_variables_are_substituted() -> None:
    assert evaluate("3 * (x + 1)", {"x": 42}) == 129
    assert evaluate("rate * 2", {"rate": 0.25}) == 0.5


@pytest.mark.parametrize(
    ("expression", "problem", "column"),
    [
        ("1 / 0", "division by zero", 5),
        ("1 // 0", "division by zero", 6),
        ("5 % (2 - 2)", "modulo by zero", 6),
        ("0 ** -1", "zero cannot be raised to a negative power", 1),
        ("  1 / 0", "division by zero", 7),
        ("2 ^ 3", "operator '^' is not supported (use ** for powers)", 1),
        ("1 << 2", "operator '<<' is not supported", 1),
        ("1 + y", "unknown name 'y'", 5),
        ("2 * sqrt", "sqrt is a function; call it as sqrt(...)", 5),
        ("pi(2)", "pi is not a function", 1),
        ("open(1)", "unknown function 'open'", 1),
        ("sqrt(1, 2)", "sqrt() takes 1 argument, got 2", 1),
        ("min()", "min() takes at least 1 argument, got 0", 1),
        ("round(1.5, ndigits=1)", "round() takes no keyword arguments", 12),
        ("sqrt(-1)", "sqrt(): math domain error", 1),
        ("round(1.5, 0.5)", "round(): ndigits must be an integer", 1),
        ("'a' + 1", "strings are not supported", 1),
        ("1 + True", "booleans are not supported", 5),
        ("2j", "imaginary numbers are not supported", 1),
        ("x.real", "attribute access is not supported", 1),
        ("1 < 2", "comparisons are not supported", 1),
        ("[1, 2]", "lists are not supported", 1),
        ("(1, 2)", "tuples are not supported", 1),
        ("(-8) ** (1 / 3)", "the result is not a real number", 1),
        ("1 +", "invalid syntax", 4),
        ("(1 + 2", "'(' was never closed", 1),
        ("1 2", "invalid syntax", 3),
        ("é + 1", "unknown name 'é'", 1),
        ("2 + é", "unknown name 'é'", 5),
        ("éé + )", "unmatched ')'", 6),
    ],
)
def test_errors_say_what_and_where(expression: str, problem: str, column: int) -> None:
    with pytest.raises(CalculationError) as caught:
        evaluate(expression)
    assert caught.value.problem == problem
    assert caught.value.column == column
    assert str(caught.value) == f"{problem} at column {column}"


def test_empty_input() -> None:
    with pytest.raises(CalculationError, match="the expression is empty"):
        evaluate("   ")


def test_one_line_only() -> None:
    with pytest.raises(CalculationError, match="on one line at column 3"):
        evaluate("(1\n+ 2)")


def test_long_input_is_refused_before_parsing() -> None:
    with pytest.raises(CalculationError, match=f"at most {MAX_INPUT_LENGTH}"):
        evaluate("1+" * MAX_INPUT_LENGTH + "1")


@pytest.mark.parametrize(
    "expression",
    ["-" * (MAX_DEPTH + 1) + "1", "sqrt(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH],
)
def test_deep_nesting_is_refused(expression: str) -> None:
    with pytest.raises(CalculationError, match="nested too deeply"):
        evaluate(expression)


def test_parser_nesting_limit_is_reported() -> None:
    with pytest.raises(CalculationError) as caught:
        evaluate("(" * 300 + "1" + ")" * 300)
    assert caught.value.column is not None


@pytest.mark.parametrize(
    "expression",
    [
        "9 ** 10 ** 9",  # refused before computing: would take minutes and gigabytes
        "2 ** 4096",
        "(2 ** 4000) * (2 ** 4000)",
        "10 ** 400 / 3",
        "1e308 * 10",
        "exp(1000)",
        "2.0 ** 5000",
        "round(5, -10 ** 9)",
    ],
)
def test_huge_results_are_refused(expression: str) -> None:
    with pytest.raises(CalculationError, match=r"too large|ndigits"):
        evaluate(expression)


def test_largest_integer_is_accepted() -> None:
    result = evaluate("2 ** 4095")
    assert isinstance(result, int)
    assert result.bit_length() == MAX_INT_BITS


def test_variables_may_not_shadow_builtins() -> None:
    with pytest.raises(CalculationError, match="'pi' is reserved"):
        evaluate("pi", {"pi": 3})
    with pytest.raises(CalculationError, match="must be a number"):
        evaluate("x", {"x": True})


def test_random_inputs_give_a_number_or_a_calculation_error() -> None:
    alphabet = "0123456789.+-*/%() e^_abcpisqrt,"
    rng = random.Random(20240601)  # noqa: S311 - reproducible inputs, not secrets
    values: list[object] = []
    problems: list[str] = []
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        try:
            values.append(evaluate(text))
        except CalculationError as exc:
            problems.append(exc.problem)
    assert values
    assert all(type(value) in (int, float) for value in values)
    assert all(problems)


@pytest.mark.parametrize(
    ("value", "precision", "text"),
    [
        (14, None, "14"),
        (14, 3, "14"),
        (0.1 + 0.2, None, "0.30000000000000004"),
        (0.1 + 0.2, 12, "0.3"),
        (2**0.5, 4, "1.4142"),
        (-0.00001, 3, "0.0"),
        (1e300, 2, "1e+300"),
    ],
)
def test_format_number(value: float, precision: int | None, text: str) -> None:
    assert format_number(value, precision) == text


def test_a_long_flat_sum_is_within_the_depth_limit() -> None:
    assert evaluate("+".join(["1"] * MAX_DEPTH)) == MAX_DEPTH
