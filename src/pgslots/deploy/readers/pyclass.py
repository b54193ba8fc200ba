"""The project's own dataclasses, instantiated statically.

Settings sometimes build DATABASES through a small config class of the project:
`DATABASES["default"] = PostgresConfig(dbname=..., host=...).to_django_dict()`, where
`PostgresConfig` is a `@dataclass` whose fields have defaults (`conn_max_age: int = 0`) and
whose method writes them into a dict. Reading it means what Python does: the fields, through the
class's bases, take the call's arguments or their defaults; an attribute of the instance is its
field; a method is a `def` of the class (or a base) run with `self` bound to the instance
(pyfunc). Only dataclasses are read this way (their `__init__` is their fields); any other
class stays an opaque name. `__post_init__` is not run (it may rewrite a field: noted).
"""

from __future__ import annotations

import ast
import dataclasses
from typing import TYPE_CHECKING, Any

from pgslots.deploy.readers.pyfunc import UserFunction

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pgslots.deploy.readers.pyeval import Evaluator, V


@dataclasses.dataclass(frozen=True, eq=False)
class UserClass:
    """A `@dataclass` of the evaluated project: its node, file and module namespace, and its
    bases that are dataclasses of the project too (nearest first)."""

    node: ast.ClassDef
    path: str
    globals: dict[str, Any]
    bases: tuple[UserClass, ...]

    def mro(self) -> list[UserClass]:
        """This class, then its bases depth first (enough for single inheritance)."""
        out: list[UserClass] = [self]
        for base in self.bases:
            out.extend(c for c in base.mro() if c not in out)
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class Instance:
    cls: UserClass
    fields: dict[str, Any]  # field name -> V


@dataclasses.dataclass(frozen=True, eq=False)
class BoundMethod:
    function: UserFunction
    instance: Any  # the V holding the Instance


def is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = (
            target.id
            if isinstance(target, ast.Name)
            else target.attr
            if isinstance(target, ast.Attribute)
            else ""
        )
        if name == "dataclass":
            return True
    return False


def instantiate(
    ev: Evaluator, cls: UserClass, args: list[V], kwargs: dict[str, V], line: int | None
) -> V:
    """`Cls(...)`: an Instance whose fields are the arguments, else the defaults."""
    from pgslots.deploy.readers.pyeval import UNKNOWN, Ref, V

    fields: dict[str, Any] = {}
    order: list[str] = []
    for klass in reversed(cls.mro()):  # base fields first, as dataclasses order them
        for node in klass.node.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            name = node.target.id
            if name not in order:
                order.append(name)
            fields[name] = _default(ev, klass, node)
    for index, value in enumerate(args):
        if index >= len(order):
            return V(UNKNOWN, (ev.ev(line),))
        fields[order[index]] = value
    for name, value in kwargs.items():
        if name not in fields:
            return V(UNKNOWN, (ev.ev(line),))  # not a field: an InitVar or a typo
        fields[name] = value
    if any(value is None for value in fields.values()):
        return V(UNKNOWN, (ev.ev(line),))  # a required field the call does not give
    if any(
        isinstance(n, ast.FunctionDef) and n.name == "__post_init__"
        for klass in cls.mro()
        for n in klass.node.body
    ):
        ev.notes.append(
            f"{cls.path}:{cls.node.lineno}: {cls.node.name}.__post_init__ not run (fields read as given)"
        )
    return V(Ref(f"obj:{cls.node.name}", Instance(cls, fields)), (ev.ev(line),))


def _default(ev: Evaluator, klass: UserClass, node: ast.AnnAssign) -> Any:
    """A field's default value (a V), or None when it has none (required)."""
    from pgslots.deploy.readers.pyeval import UNKNOWN, V

    value = node.value
    if value is None:
        return None
    if isinstance(value, ast.Call) and getattr(
        value.func, "id", getattr(value.func, "attr", "")
    ) == ("field"):
        for keyword in value.keywords:
            if keyword.arg == "default":
                return _in(ev, klass, keyword.value)
            if keyword.arg == "default_factory":
                factory = getattr(keyword.value, "id", "")
                made: dict | list | None = (
                    {} if factory == "dict" else [] if factory == "list" else None
                )
                return V(made, (ev.ev(node.lineno),)) if made is not None else V(UNKNOWN)
        return None
    return _in(ev, klass, value)


def _in(ev: Evaluator, klass: UserClass, expression: ast.expr) -> Any:
    """The expression's value in the class's module (its file cited)."""
    saved = ev.path
    ev.path = klass.path
    try:
        return ev.expr(expression, klass.globals)
    finally:
        ev.path = saved


def attribute(instance_value: V, name: str) -> V | None:
    """`obj.field` (its value) or `obj.method` (bound), or None when the class has neither."""
    from pgslots.deploy.readers.pyeval import Ref, V

    instance = instance_value.value.data
    if name in instance.fields:
        return instance.fields[name]
    for klass in instance.cls.mro():
        for node in klass.node.body:
            if isinstance(node, ast.FunctionDef) and node.name == name and not node.decorator_list:
                function = UserFunction(node, klass.path, klass.globals)
                return V(
                    Ref(f"method:{name}", BoundMethod(function, instance_value)),
                    instance_value.evidence,
                )
    return None
