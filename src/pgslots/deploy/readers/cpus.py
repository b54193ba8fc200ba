"""Counts written as expressions of the host's CPU count.

gunicorn config files size themselves from the machine: `workers = multiprocessing.cpu_count()
* 2 + 1`, `threads = min(multiprocessing.cpu_count(), 12)`. The CPU count is not in the
repository, so such a count is neither a number nor a plain unknown: it is a formula over one
unknown, `cpus`, which keeps its cap (`min(cpus, 12)` never exceeds 12) and becomes a number
as soon as the user supplies `--assume NAME.cpus=N`. This module turns the Python expression
into that formula (`min(cpus, 12)`, `cpus * 2 + 1`) and evaluates a formula for a CPU count.
Nothing is imported or executed: only integer arithmetic, `min`, `max`, `int` and the
standard CPU-count calls are understood; anything else is no formula.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

CPU_CALLS = frozenset({"cpu_count", "process_cpu_count"})
"""`multiprocessing.cpu_count()`, `os.cpu_count()`, `psutil.cpu_count()`, `os.process_cpu_count()`."""

_OPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//"}
_PRECEDENCE: dict[type, int] = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.FloorDiv: 2}


def cpu_formula(node: ast.expr, known: Callable[[str], str | None]) -> str | None:
    """The expression as a formula over `cpus`, or None when it is anything else or does not
    involve the CPU count. `known(name)` gives a module-level name's value as a formula
    (`cores = multiprocessing.cpu_count()` then `workers = cores * 2`), or None."""
    text = _formula(node, known)
    return text if text is not None and "cpus" in text else None


def _formula(node: ast.expr, known: Callable[[str], str | None]) -> str | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        return str(node.value)
    if isinstance(node, ast.Name):
        return known(node.id)
    if isinstance(node, ast.Call):
        name = (
            node.func.attr
            if isinstance(node.func, ast.Attribute)
            else node.func.id
            if isinstance(node.func, ast.Name)
            else ""
        )
        if name in CPU_CALLS and not node.args:
            return "cpus"
        if name == "len" and len(node.args) == 1 and isinstance(node.args[0], ast.Call):
            inner = node.args[0].func
            if isinstance(inner, ast.Attribute) and inner.attr == "sched_getaffinity":
                return "cpus"
        if name == "int" and len(node.args) == 1:
            return _formula(node.args[0], known)
        if name in ("get", "getenv", "int") and (
            len(node.args) == 2 or any(k.arg == "default" for k in node.keywords)
        ):
            # `os.environ.get("WORKERS", cpu_count() * 2 + 1)`: the default's formula, used by the
            # caller only when the variable is set nowhere
            default = (
                node.args[1]
                if len(node.args) == 2
                else next(k.value for k in node.keywords if k.arg == "default")
            )
            return _formula(default, known)
        if name in ("min", "max") and len(node.args) >= 2 and not node.keywords:
            parts = [_formula(arg, known) for arg in node.args]
            return None if any(p is None for p in parts) else f"{name}({', '.join(parts)})"  # type: ignore[arg-type]
        return None
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _formula(node.left, known), _formula(node.right, known)
        if left is None or right is None:
            return None
        mine = _PRECEDENCE[type(node.op)]
        if isinstance(node.left, ast.BinOp) and _PRECEDENCE.get(type(node.left.op), 9) < mine:
            left = f"({left})"
        if isinstance(node.right, ast.BinOp) and (
            _PRECEDENCE.get(type(node.right.op), 9) < mine
            or (
                _PRECEDENCE.get(type(node.right.op), 9) == mine
                and isinstance(node.op, (ast.Sub, ast.FloorDiv))
            )
        ):
            right = f"({right})"
        return f"{left} {_OPS[type(node.op)]} {right}"
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
        # `os.cpu_count() or 1`: the CPU count (it is None only where it cannot be told)
        return _formula(node.values[0], known)
    return None


def evaluate(formula: str, cpus: int) -> int | None:
    """The formula's value for a CPU count; None if it is not a formula this module wrote."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        return None
    return _value(tree.body, cpus)


def _value(node: ast.expr, cpus: int) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name) and node.id == "cpus":
        return cpus
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("min", "max")
    ):
        values = [_value(arg, cpus) for arg in node.args]
        if any(v is None for v in values):
            return None
        return (min if node.func.id == "min" else max)(values)  # type: ignore[type-var]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left, cpus), _value(node.right, cpus)
        if left is None or right is None or (isinstance(node.op, ast.FloorDiv) and right == 0):
            return None
        return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}.get(
            type(node.op), left // right if right else 0
        )
    return None


def module_formulas(tree: ast.Module) -> dict[str, str]:
    """Every top-level name of a config module whose value is a formula over `cpus`, in order
    (a later assignment replaces an earlier one)."""
    formulas: dict[str, str] = {}
    constants: dict[str, str] = {}

    def known(name: str) -> str | None:
        return formulas.get(name) or constants.get(name)

    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            target, value = statement.targets[0].id, statement.value
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.value is not None
        ):
            target, value = statement.target.id, statement.value
        else:
            continue
        formulas.pop(target, None)
        constants.pop(target, None)
        found = cpu_formula(value, known)
        if found is not None:
            formulas[target] = found
        elif (
            isinstance(value, ast.Constant)
            and isinstance(value.value, int)
            and not isinstance(value.value, bool)
        ):
            constants[target] = str(value.value)
    return formulas


_SHELL_CPUS = re.compile(
    r"\$\(\s*(nproc(\s+--all)?|getconf\s+_NPROCESSORS_ONLN|grep\s+-c\s+\^?processor\s+/proc/cpuinfo)\s*\)"
)


def shell_formula(raw: str, value_of: Callable[[str], str | None]) -> str | None:
    """`$((2*$(nproc)+1))` -> "2 * cpus + 1": shell arithmetic over the CPU count (`nproc`,
    `getconf _NPROCESSORS_ONLN`), with `$VAR`s whose values are known numbers; None otherwise."""
    text = raw.strip().strip("\"'")
    default = re.fullmatch(r"\$\{([A-Za-z_]\w*):?-(.*)\}", text, re.DOTALL)
    if default:
        # `${GUNICORN_WORKERS:-${WEB_CONCURRENCY:-$((2 * $(nproc)))}}`: the default, when the variable is unset
        return shell_formula(default[2], value_of) if value_of(default[1]) is None else None
    if not (text.startswith("$((") and text.endswith("))")):
        return "cpus" if _SHELL_CPUS.fullmatch(text) else None
    body = _SHELL_CPUS.sub(" cpu_count() ", text[3:-2])
    if "cpu_count()" not in body:
        return None

    def variable(match: re.Match[str]) -> str:
        found = value_of(match[1] or match[2])
        if found is None or not re.fullmatch(r"-?\d+", found.strip()):
            raise ValueError(match[0])
        return found.strip()

    try:
        body = re.sub(r"\$\{?([A-Za-z_]\w*)\}?|\b(?!cpu_count\b)([A-Za-z_]\w*)\b", variable, body)
        tree = ast.parse(body.replace("/", "//").replace("////", "//").strip(), mode="eval")
    except (ValueError, SyntaxError):
        return None
    return cpu_formula(tree.body, lambda name: None)
