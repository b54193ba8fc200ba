"""Shell arithmetic: `$(( (WORKERS + 1) / 2 ))`, `$((W <= 3 ? 2 : W / 2))`, `(( ${ASGI:-0} == 1 ))`.

Entry scripts compute their process counts this way (Weblate's start: the web workers from the
clamped CPU count, the Celery concurrency as half of it), and test flags with `(( ))`. The
expression is evaluated the way bash does on integers (C operators, `?:`, truncating division)
once every variable in it has a known integer value; otherwise the value is unknown.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable

_NAME = re.compile(r"\$\{([A-Za-z_]\w*)(?::?-(\d+))?\}|\$([A-Za-z_]\w*)|\b([A-Za-z_]\w*)\b")
_ALLOWED = re.compile(r"^[\d\s+\-*/%()<>=!&|?:]*$")

_BINARY: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: lambda a, b: int(a / b),  # bash truncates toward zero
    ast.Mod: lambda a, b: a - b * int(a / b),
}
_COMPARE: dict[type, Callable[[int, int], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def arithmetic_spans(word: str) -> list[tuple[int, int]]:
    """(start, end) of each `$(( ... ))` in a word, parentheses balanced."""
    spans: list[tuple[int, int]] = []
    index = word.find("$((")
    while index != -1:
        depth, end = 0, index + 1
        while end < len(word):
            depth += {"(": 1, ")": -1}.get(word[end], 0)
            end += 1
            if depth == 0:
                break
        if depth:
            break
        spans.append((index, end))
        index = word.find("$((", end)
    return spans


def evaluate_arithmetic(expression: str, value_of: Callable[[str], str | None]) -> int | None:
    """The integer value of a shell arithmetic expression; `value_of` gives a variable's value
    (None: unknown). `${X:-N}` takes N when X is unset or empty."""

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[3] or match[4]
        found = value_of(name)
        if (found is None or found == "") and match[2] is not None:
            return match[2]
        if found is None or not re.fullmatch(r"\s*-?\d+\s*", found):
            raise ValueError(name)
        return f"({found.strip()})"

    try:
        numeric = _NAME.sub(variable, expression)
    except ValueError:
        return None
    if not _ALLOWED.match(numeric):
        return None
    python = _python(numeric)
    if python is None:
        return None
    try:
        tree = ast.parse(python, mode="eval")
        return _value(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return None


def _python(text: str) -> str | None:
    """C-style integer expression -> Python: `?:` to a conditional, `/` to a division node,
    `&&`/`||`/`!` to boolean operators."""
    text = text.strip()
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "?" and depth == 0:
            colon = _matching_colon(text, index + 1)
            if colon is None:
                return None
            parts = [_python(p) for p in (text[:index], text[index + 1 : colon], text[colon + 1 :])]
            if any(p is None for p in parts):
                return None
            return f"(({parts[1]}) if ({parts[0]}) else ({parts[2]}))"
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    return text.replace("/", "//").strip()


def _matching_colon(text: str, start: int) -> int | None:
    depth = nested = 0
    for index in range(start, len(text)):
        char = text[index]
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth:
            continue
        if char == "?":
            nested += 1
        elif char == ":":
            if not nested:
                return index
            nested -= 1
    return None


def _value(node: ast.expr) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return int(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_value(node.left), _value(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        operand = _value(node.operand)
        if isinstance(node.op, ast.Not):
            return int(not operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return int(_COMPARE[type(node.ops[0])](_value(node.left), _value(node.comparators[0])))
    if isinstance(node, ast.BoolOp):
        values = [_value(v) for v in node.values]
        return int(all(values) if isinstance(node.op, ast.And) else any(values))
    if isinstance(node, ast.IfExp):
        return _value(node.body) if _value(node.test) else _value(node.orelse)
    raise ValueError(ast.dump(node))
