"""Calls to the project's own helper functions, evaluated statically.

Settings modules often build their values through small functions of their own:
`int(os.environ.get(name, fallback))` behind `_int_env("TASK_WORKERS", 2)`, an
`int_setting("DB_PERSIST", "0")` that maps "None" to None, or a whole
`DATABASES = _databases()`. Reading such a call means running the function's
body the way the evaluator runs a module: its parameters bound to the evaluated
arguments, its statements evaluated in a local namespace (the module's names behind it),
until a `return`. Nothing is executed for real: only the statements configuration is made
of are understood, and anything else (a loop, a `raise`, a branch that cannot be decided
and returns) makes the result unknown rather than a guess.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pgslots.deploy.readers.pyeval import Evaluator, V

MAX_CALL_DEPTH = 8
"""Helpers call helpers; recursion is not configuration."""


@dataclasses.dataclass(frozen=True, eq=False)
class UserFunction:
    """A `def` of the evaluated project: its node, the file it is in and that module's
    namespace (its globals, looked up at call time as Python does)."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    path: str
    globals: dict[str, Any]


class _Abort(Exception):
    """The body did something the reading cannot follow: the call's value is unknown."""


_FELL_OFF = object()


def call_user_function(
    ev: Evaluator, fn: UserFunction, args: list[V], kwargs: dict[str, V], line: int | None
) -> V:
    """The value the call returns, or UNKNOWN (with the call site as evidence)."""
    from pgslots.deploy.readers.pyeval import UNKNOWN, V

    unknown = V(UNKNOWN, (ev.ev(line),))
    if isinstance(fn.node, ast.AsyncFunctionDef) or ev.call_depth >= MAX_CALL_DEPTH:
        return unknown
    saved_path = ev.path
    ev.path = fn.path
    ev.call_depth += 1
    try:
        local = dict(fn.globals)
        local.update(_bind(ev, fn, args, kwargs))
        outcome = _run(ev, fn.node.body, local)
    except (_Abort, RecursionError):
        return unknown
    finally:
        ev.call_depth -= 1
        ev.path = saved_path
    call_site = ev.ev(line)  # the caller's line comes first: that is where the value is used
    if outcome is _FELL_OFF:
        return V(None, (call_site,))
    return dataclasses.replace(
        outcome, evidence=(call_site,) + tuple(e for e in outcome.evidence if e != call_site)
    )


def _bind(ev: Evaluator, fn: UserFunction, args: list[V], kwargs: dict[str, V]) -> dict[str, V]:
    spec = fn.node.args
    positional = list(spec.posonlyargs) + list(spec.args)
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(spec.defaults)) + list(
        spec.defaults
    )
    bound: dict[str, V] = {}
    for index, arg in enumerate(positional):
        if index < len(args):
            bound[arg.arg] = args[index]
        elif arg.arg in kwargs:
            bound[arg.arg] = kwargs[arg.arg]
        elif defaults[index] is not None:
            bound[arg.arg] = ev.expr(defaults[index], fn.globals)  # type: ignore[arg-type]
        else:
            raise _Abort  # a required argument we could not see (e.g. passed with *args)
    for arg, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
        if arg.arg in kwargs:
            bound[arg.arg] = kwargs[arg.arg]
        elif default is not None:
            bound[arg.arg] = ev.expr(default, fn.globals)
        else:
            raise _Abort
    if len(args) > len(positional) and spec.vararg is None:
        raise _Abort
    if spec.vararg is not None or spec.kwarg is not None:
        raise _Abort  # *args / **kwargs helpers forward to something we cannot see
    return bound


def _run(ev: Evaluator, body: list[ast.stmt], local: dict[str, Any]) -> Any:
    """Evaluate statements until a `return`: its value, or `_FELL_OFF`."""
    from pgslots.deploy.readers.pyeval import V, truthy

    for node in body:
        if isinstance(node, ast.Return):
            return (
                ev.expr(node.value, local)
                if node.value is not None
                else V(None, (ev.ev(node.lineno),))
            )
        if isinstance(node, ast.Raise):
            raise _Abort
        if isinstance(node, ast.If):
            truth = truthy(ev.expr(node.test, local))
            if truth is None:
                if _exits(node.body) or _exits(node.orelse):
                    raise _Abort  # which `return` runs depends on the real environment
                ev.if_(node, local)
                continue
            outcome = _run(ev, node.body if truth else node.orelse, local)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            from pgslots.deploy.readers.pyeval import EnvKeyMissing, handler_for_key_error

            handled = False
            handler = handler_for_key_error(node)  # type: ignore[arg-type]
            ev.catching_key_errors += handler is not None
            try:
                outcome = _run(ev, node.body, local)  # type: ignore[attr-defined]
            except EnvKeyMissing:
                if handler is None:
                    raise
                handled = True
            finally:
                ev.catching_key_errors -= handler is not None
            if handled and handler is not None:
                outcome = _run(ev, handler.body, local)
            if outcome is _FELL_OFF and not handled:
                outcome = _run(ev, getattr(node, "orelse", []), local)
            if outcome is _FELL_OFF:
                outcome = _run(ev, getattr(node, "finalbody", []), local)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            outcome = _run(ev, node.body, local)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            raise _Abort  # a loop can build anything: not read
        elif type(node).__name__ == "Match":
            outcome = _match(ev, node, local)
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Pass)):
            continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        else:
            ev.statement(node, local)
            continue
        if outcome is not _FELL_OFF:
            return outcome
    return _FELL_OFF


def _exits(body: list[ast.stmt]) -> bool:
    return any(isinstance(n, (ast.Return, ast.Raise)) for stmt in body for n in ast.walk(stmt))


def _match(ev: Evaluator, node: Any, local: dict[str, Any]) -> Any:
    """`match engine: case "postgresql": ...` with literal patterns and `case _`."""
    subject = ev.expr(node.subject, local)
    if not subject.known:
        raise _Abort
    for case in node.cases:
        if case.guard is not None or not _pattern_matches(ev, case.pattern, subject.plain(), local):
            continue
        return _run(ev, case.body, local)
    return _FELL_OFF


def _pattern_matches(ev: Evaluator, pattern: Any, value: Any, local: dict[str, Any]) -> bool:
    kind = type(pattern).__name__
    if kind == "MatchValue":
        wanted = ev.expr(pattern.value, local)
        if not wanted.known:
            raise _Abort
        return bool(wanted.plain() == value)
    if kind == "MatchSingleton":
        return value is pattern.value
    if kind == "MatchOr":
        return any(_pattern_matches(ev, p, value, local) for p in pattern.patterns)
    if kind == "MatchAs" and pattern.pattern is None:
        return True  # `case _:` or `case name:`
    raise _Abort
