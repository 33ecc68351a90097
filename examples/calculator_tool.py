"""A tool of one's own: a calculator, enabled with ``tools=["calculator"]`` (docs/tools.md)."""

import ast
import operator

from branchgym.envs import TOOLS, Probe, Tool, ToolOutput

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise OverflowError("exponent too large")
        return _OPS[type(node.op)](left, right)
    raise ValueError(f"{type(node).__name__} is not allowed")


@TOOLS.register("calculator")
class Calculator(Tool):
    name = "calculator"
    main_arg = "expression"
    usage = "an arithmetic expression such as `(3 + 4) * 2`; returns its value"
    default_max_calls = 5
    probe = Probe("6 * 7", then="2 ** 10")

    def call(self, argument: str) -> ToolOutput:
        try:
            return ToolOutput(str(_eval(ast.parse(argument, mode="eval").body)))
        except (SyntaxError, ValueError, ArithmeticError) as exc:
            return ToolOutput(f"Cannot evaluate {argument!r}: {exc}. Use numbers, "
                              "+ - * / ** and parentheses.", ok=False)
