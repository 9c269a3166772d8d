"""A safe arithmetic evaluator: numbers, + - * / // % ** and parentheses, nothing else (no names, no calls)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

from roles.errors import ToolError

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_BITS = 4096
ALLOWED = "only numbers, + - * / // % ** and parentheses are allowed"


def evaluate(expression: str) -> Number:
    """The value of ``expression``; ``ToolError`` (for the model to read) when it is not plain arithmetic."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"{expression!r} is not an arithmetic expression ({exc.msg}): {ALLOWED}") from exc
    return _eval(tree.body)


def _eval(node: ast.expr) -> Number:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _binary(node.op, _eval(node.left), _eval(node.right))
    raise ToolError(f"{ast.unparse(node)!r} cannot be evaluated: {ALLOWED}")


def _binary(op: ast.operator, left: Number, right: Number) -> Number:
    if isinstance(op, ast.Pow) and _too_large(left, right):
        raise ToolError(f"{left} ** {right} is too large to compute")
    try:
        result = _BINARY[type(op)](left, right)
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc
    except OverflowError as exc:
        raise ToolError(f"the result is too large ({exc})") from exc
    if isinstance(result, complex):
        raise ToolError(f"{left} ** {right} has no real value")
    if isinstance(result, int) and result.bit_length() > MAX_BITS:
        raise ToolError("the result is too large")
    return result


def _too_large(base: Number, exponent: Number) -> bool:
    """An integer power whose result would have more than ``MAX_BITS`` bits (floats overflow on their own)."""
    return isinstance(base, int) and abs(base) > 1 and abs(exponent) * abs(base).bit_length() > MAX_BITS
