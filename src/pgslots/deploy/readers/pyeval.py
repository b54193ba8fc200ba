"""A static evaluator for configuration modules (Django settings, gunicorn.conf.py).

Settings files are Python, and people write them every way Python allows. This module walks
a module's AST and evaluates the module-level statements that configuration is made of
(assignments, item assignments, `.update()`, `if`, `try`, star imports of sibling modules,
`env(...)`/`os.environ.get(...)` look-ups) against an environment we read from env files.
Nothing is imported or executed: calls are evaluated only when they are one of the
well-known configuration helpers below; anything else becomes `UNKNOWN`, so a settings file
that would run a command on import is simply read.

Every value carries the `Evidence` of where it was set and how it was resolved.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.envfiles import UNKNOWN_VALUE, Env
from pgslots.deploy.readers.pyclass import (
    BoundMethod,
    Instance,
    UserClass,
    attribute,
    instantiate,
    is_dataclass,
)
from pgslots.deploy.readers.pyfunc import UserFunction, call_user_function
from pgslots.deploy.readers.pysource import parse_source
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value")


UNKNOWN: Any = _Unknown()
"""A value the static reading cannot know."""


class EnvKeyMissing(Exception):
    """`os.environ["X"]` for a variable the process's complete environment does not set: Python
    raises KeyError there, so a `try: ... except KeyError:` around it takes its handler."""


_KEY_ERRORS = {"KeyError", "LookupError", "Exception", "BaseException"}


def handler_for_key_error(node: ast.Try) -> ast.ExceptHandler | None:
    """The `except` clause that catches the KeyError of a missing environment variable."""
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if handler.type is None or any(
            (n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "")
            in _KEY_ERRORS
            for n in names
        ):
            return handler
    return None


@dataclasses.dataclass
class V:
    """An evaluated value with its provenance. Dicts hold `V`s (so item assignments keep
    their own evidence); lists hold `V`s."""

    value: Any
    evidence: tuple[Evidence, ...] = ()
    env_var: str | None = None  # the environment variable it was read from, if any
    env_default: bool = False  # it is the default of a look-up, the variable being unset

    @property
    def known(self) -> bool:
        return self.value is not UNKNOWN

    def plain(self) -> Any:
        """The Python value with nested `V`s unwrapped (UNKNOWN stays UNKNOWN)."""
        return _plain(self.value)


def _plain(value: Any) -> Any:
    if isinstance(value, V):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Ref:
    """A module, function or object we know by name (`os.environ.get`, `environ.Env`)."""

    name: str
    data: Any = None  # e.g. the scheme of an `environ.Env(...)` instance


TRUE_WORDS = {"1", "true", "yes", "on", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "off", "n", "f", ""}

POSTGRES_SCHEMES = {
    "postgres",
    "postgresql",
    "pgsql",
    "postgis",
    "psql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}


def cast_value(raw: str, cast: str | None) -> Any:
    """An env string as the helper would return it; UNKNOWN when the cast fails."""
    try:
        if cast == "int":
            return int(raw.strip())
        if cast == "float":
            return float(raw.strip())
        if cast == "bool":
            low = raw.strip().lower()
            if low in TRUE_WORDS:
                return True
            if low in FALSE_WORDS:
                return False
            return UNKNOWN
        if cast == "list":
            return [s.strip() for s in raw.split(",") if s.strip()]
    except ValueError:
        return UNKNOWN
    return raw


def parse_db_url(url: str, where: tuple[Evidence, ...], env_var: str | None) -> dict[str, V]:
    """A database URL as django-environ / dj-database-url turn it into a DATABASES entry."""
    REDACTOR.register_named("DATABASE_URL", url)
    if "${" in url:
        return _symbolic_db_url(url, where, env_var)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return unknown_db(where, env_var)
    scheme = parts.scheme.lower()
    engine = (
        "django.db.backends.postgresql"
        if scheme in POSTGRES_SCHEMES or scheme.startswith("postgres")
        else "django.db.backends.sqlite3"
        if scheme.startswith("sqlite")
        else f"(scheme {scheme})"
    )
    if parts.password:
        REDACTOR.register(unquote(parts.password))
    # The role and the database are shown in the report (the application role).
    REDACTOR.publish(unquote(parts.username or ""), unquote(parts.path.lstrip("/")))

    def item(value: Any) -> V:
        return V(value, where, env_var)

    entry: dict[str, V] = {
        "ENGINE": item(engine),
        "NAME": item(unquote(parts.path.lstrip("/")) or None),
        "HOST": item(unquote(parts.hostname or "") or None),
        "PORT": item(str(parts.port) if parts.port else None),
        "USER": item(unquote(parts.username or "") or None),
    }
    options: dict[str, V] = {}
    for key, value in parse_qsl(parts.query):
        if key.lower() == "conn_max_age":
            entry["CONN_MAX_AGE"] = item(cast_value(value, "int"))
        elif key.lower() == "conn_health_checks":
            entry["CONN_HEALTH_CHECKS"] = item(cast_value(value, "bool"))
        else:
            options[key] = item(value)
    if options:
        entry["OPTIONS"] = item(options)
    return entry


_URL_PARTS = re.compile(
    r"^(?P<scheme>[^:]+)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@)?(?P<host>[^:/?]*)(?::(?P<port>[^/?]*))?(?:/(?P<name>[^?]*))?"
)


def _symbolic_db_url(url: str, where: tuple[Evidence, ...], env_var: str | None) -> dict[str, V]:
    """A URL built from variables we cannot see (`postgres://${POSTGRES_USER}@${POSTGRES_HOST}/...`):
    each part is kept as written, so two URLs built from the same variables compare equal."""
    match = _URL_PARTS.match(url)
    if not match:
        return unknown_db(where, env_var)
    scheme = match["scheme"].lower()
    engine = (
        "django.db.backends.postgresql"
        if scheme.startswith("postgres") or scheme in POSTGRES_SCHEMES
        else f"(scheme {scheme})"
    )
    return {
        "ENGINE": V(engine, where, env_var),
        "NAME": V(match["name"] or None, where, env_var),
        "HOST": V(match["host"] or None, where, env_var),
        "PORT": V(match["port"] or None, where, env_var),
        "USER": V(match["user"] or None, where, env_var),
    }


def unknown_db(where: tuple[Evidence, ...], env_var: str | None) -> dict[str, V]:
    """A DATABASES entry from a URL we cannot see: every field tied to its variable."""
    return {key: V(UNKNOWN, where, env_var) for key in ("ENGINE", "NAME", "HOST", "PORT", "USER")}


class ModuleResolver:
    """Dotted module names to repository files (`config.settings.base` -> its path)."""

    def __init__(self, repo: RepoFiles) -> None:
        self.repo = repo
        self._index: dict[str, list[str]] = {}
        for path in repo.paths:
            if path.endswith(".py"):
                dotted = path[:-3].replace("/", ".")
                if dotted.endswith(".__init__"):
                    dotted = dotted[: -len(".__init__")]
                parts = dotted.split(".")
                # index every suffix: the repo root may not be the import root (src/, backend/)
                for start in range(len(parts)):
                    self._index.setdefault(".".join(parts[start:]), []).append(path)

    def find(self, dotted: str, near: str | None = None) -> str | None:
        """The file of an absolute import, or None for anything outside the project.

        A candidate must sit at an import root: `proj/celery.py` is not module `celery`
        when `proj/` is a package (it has `__init__.py`), so `from celery import Celery`
        never lands in the project's own `celery.py`.
        """
        as_path = dotted.replace(".", "/")
        found = []
        for candidate in self._index.get(dotted, []):
            stem = candidate[:-3]
            if stem.endswith("/__init__"):
                stem = stem[: -len("/__init__")]
            if stem == as_path:
                found.append(candidate)
            elif stem.endswith("/" + as_path):
                prefix = stem[: -len(as_path) - 1]
                if not self.repo.has(prefix + "/__init__.py"):
                    found.append(candidate)
        if not found:
            return None
        if near is None or len(found) == 1:
            return min(found, key=lambda p: (p.count("/"), p))
        return max(found, key=lambda p: (_common_prefix(p, near), -p.count("/")))

    def relative(self, from_path: str, level: int, module: str | None) -> str | None:
        """`from .base import *` (level 1) seen in `from_path`."""
        folder = from_path.rsplit("/", 1)[0] if "/" in from_path else ""
        if from_path.endswith("__init__.py"):
            level -= 1
        for _ in range(max(0, level - 1)):
            folder = folder.rsplit("/", 1)[0] if "/" in folder else ""
        base = join(folder, (module or "").replace(".", "/"))
        for candidate in (base + ".py", join(base, "__init__.py")):
            if self.repo.has(candidate):
                return candidate
        return None


def _common_prefix(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        count += 1
    return count


@dataclasses.dataclass
class Evaluation:
    """The namespace a module (and its star imports) leaves, with what could not be read."""

    namespace: dict[str, V]
    files: list[str]  # the module and everything it star-imported, in evaluation order
    notes: list[str]
    failed: list[tuple[str, int | None, str]]  # (path, line, why): syntax errors, unreadable
    # `if` statements that could not be decided and set DATABASES: (path, line, test, whether the branches name different engines)
    undecided: list[tuple[str, int, str, bool]] = dataclasses.field(default_factory=list)


_NON_PRODUCTION_CONDITION = re.compile(
    r"test|pytest|debug|argv|local|dev|ci\b|runserver", re.IGNORECASE
)


class Evaluator:
    """Evaluates configuration modules of one repository against one environment."""

    MAX_DEPTH = 12

    def __init__(
        self,
        repo: RepoFiles,
        env: Env,
        resolver: ModuleResolver | None = None,
        trees: dict[str, ast.Module | None] | None = None,
    ) -> None:
        self.repo = repo
        self.env = env
        self.resolver = resolver or ModuleResolver(repo)
        self.trees: dict[str, ast.Module | None] = trees if trees is not None else {}
        self._modules: dict[str, dict[str, V]] = {}
        self._stack: list[str] = []
        self.files: list[str] = []
        self.notes: list[str] = []
        self.failed: list[tuple[str, int | None, str]] = []
        self.undecided: list[
            tuple[str, int, str, bool]
        ] = []  # `if` statements that could not be decided and set DATABASES
        self.catching_key_errors = (
            0  # depth of `try` blocks with an `except KeyError:` being evaluated
        )
        self.path = ""
        self.call_depth = 0  # nesting of calls to the project's own functions (pyfunc)

    # ------------------------------------------------------------------ modules

    def run(self, path: str) -> Evaluation:
        namespace = self.module(path)
        if "DATABASES" not in namespace:
            self.configuration_class(path, namespace)
        return Evaluation(
            namespace, list(self.files), list(self.notes), list(self.failed), list(self.undecided)
        )

    def tree(self, path: str) -> ast.Module | None:
        if path not in self.trees:
            text = self.repo.text(path)
            if text is None:
                self.trees[path] = None
            else:
                try:
                    self.trees[path], rewritten = parse_source(text, path)
                    if rewritten:
                        self.notes.append(
                            f"{path}:{rewritten[0]}: `except A, B:` (Python 3.14, PEP 758) read as "
                            f"`except (A, B):` on {len(rewritten)} line(s)"
                        )
                except (SyntaxError, ValueError) as exc:
                    line = getattr(exc, "lineno", None)
                    self.repo.broken(path, line, f"Python syntax error: {getattr(exc, 'msg', exc)}")
                    self.trees[path] = None
        return self.trees[path]

    def module(self, path: str, into: dict[str, V] | None = None) -> dict[str, V]:
        """Evaluate `path`; with `into`, star-import semantics (the caller's namespace)."""
        if path in self._stack or len(self._stack) >= self.MAX_DEPTH:
            self.notes.append(f"{path}: import cycle or depth limit; not followed")
            return into if into is not None else {}
        if into is None and path in self._modules:
            return self._modules[path]
        tree = self.tree(path)
        namespace: dict[str, V] = {} if into is None else into
        if tree is None:
            self.failed.append((path, None, "not readable or not valid Python"))
            return namespace
        if path not in self.files:
            self.files.append(path)
        self._stack.append(path)
        saved = self.path
        self.path = path
        try:
            self.block(tree.body, namespace)
        finally:
            self.path = saved
            self._stack.pop()
        if into is None:
            self._modules[path] = namespace
        return namespace

    def configuration_class(self, path: str, namespace: dict[str, V]) -> None:
        """django-configurations: DATABASES is a class attribute of the `Configuration` class
        that DJANGO_CONFIGURATION selects at run time. When exactly one class of the settings
        module sets DATABASES (`class Base(Configuration)`, the others inherit it), every
        selectable class has that value: its body is evaluated (module names visible, nothing
        run) and DATABASES taken from it. Several classes setting it stay undecided."""
        tree = self.tree(path)
        if tree is None:
            return
        owners = [
            node
            for node in tree.body
            if isinstance(node, ast.ClassDef) and _assigns(node.body, "DATABASES")
        ]
        if len(owners) != 1:
            return
        owner = owners[0]
        scope = dict(namespace)
        saved = self.path
        self.path = path
        try:
            self.block(owner.body, scope)
        finally:
            self.path = saved
        databases = scope.get("DATABASES")
        if databases is not None and isinstance(databases.value, dict):
            namespace["DATABASES"] = databases
            self.notes.append(
                f"{path}:{owner.lineno}: DATABASES read from class {owner.name}, the only settings class "
                "that sets it (django-configurations: every class DJANGO_CONFIGURATION selects inherits it)"
            )

    # ------------------------------------------------------------------ statements

    def block(
        self, body: list[ast.stmt], ns: dict[str, V], propagate: tuple[type[Exception], ...] = ()
    ) -> None:
        for statement in body:
            try:
                self.statement(statement, ns)
            except propagate:
                raise
            except RecursionError:
                self.notes.append(f"{self.path}:{statement.lineno}: too deeply nested; skipped")
            except Exception as exc:  # noqa: BLE001 - an odd statement must not stop the audit
                self.notes.append(
                    f"{self.path}:{statement.lineno}: not evaluated ({type(exc).__name__})"
                )

    def statement(self, node: ast.stmt, ns: dict[str, V]) -> None:
        if isinstance(node, ast.Assign):
            value = self.expr(node.value, ns)
            for target in node.targets:
                self.assign(target, value, ns, node.lineno)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, self.expr(node.value, ns), ns, node.lineno)
        elif isinstance(node, ast.AugAssign):
            current = (
                self.expr(node.target, ns)
                if isinstance(node.target, (ast.Name, ast.Subscript))
                else V(UNKNOWN)
            )
            value = self.binop(node.op, current, self.expr(node.value, ns), node)
            self.assign(node.target, value, ns, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            self.import_from(node, ns)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name if alias.asname else alias.name.split(".")[0]
                ns[alias.asname or top] = V(Ref(top if not alias.asname else alias.name))
        elif isinstance(node, ast.If):
            self.if_(node, ns)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handler = handler_for_key_error(node)  # type: ignore[arg-type]
            self.catching_key_errors += handler is not None
            try:
                self.block(node.body, ns, propagate=(EnvKeyMissing,))  # type: ignore[attr-defined]
                missing = False
            except EnvKeyMissing:
                if handler is None:
                    raise
                missing = True
            finally:
                self.catching_key_errors -= handler is not None
            self.block(
                handler.body if missing and handler is not None else getattr(node, "orelse", []), ns
            )
            self.block(getattr(node, "finalbody", []), ns)
        elif isinstance(node, ast.With):
            self.block(node.body, ns)
        elif isinstance(node, ast.For):
            self.for_(node, ns)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self.call_statement(node.value, ns)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ns[node.name] = V(
                Ref(f"def:{node.name}", UserFunction(node, self.path, ns)), (self.ev(node.lineno),)
            )
        elif isinstance(node, ast.ClassDef) and is_dataclass(node):
            bases = tuple(
                ns[b.id].value.data
                for b in node.bases
                if isinstance(b, ast.Name)
                and b.id in ns
                and isinstance(ns[b.id].value, Ref)
                and isinstance(ns[b.id].value.data, UserClass)
            )
            ns[node.name] = V(
                Ref(f"def:{node.name}", UserClass(node, self.path, ns, bases)),
                (self.ev(node.lineno),),
            )
        elif isinstance(node, ast.ClassDef):
            ns[node.name] = V(Ref(f"def:{node.name}"), (self.ev(node.lineno),))
        # while loops, deletes, asserts, ...: configuration rarely lives there; ignored

    MAX_LOOP = 64

    def for_(self, node: ast.For, ns: dict[str, V]) -> None:
        """`for alias in DATABASES: DATABASES[alias]["CONN_MAX_AGE"] = ...`: over something the
        settings define themselves (a dict's keys, a list, a tuple) the body runs once per item.
        Over anything else (`os.environ.items()`), or with break/continue/else, it is not run,
        and the note says so."""
        items = self.expr(node.iter, ns)
        values: list | None = None
        if isinstance(items.value, dict):
            values = list(items.value.keys())
        elif isinstance(items.value, (list, tuple)):
            values = list(items.value)
        jumps = any(isinstance(n, (ast.Break, ast.Continue, ast.Return)) for n in ast.walk(node))
        if values is None or jumps or node.orelse or len(values) > self.MAX_LOOP:
            source = ast.unparse(
                node.iter
            )  # not get_source_segment: it splits the whole file on each call
            self.notes.append(
                f"{self.path}:{node.lineno}: `for ... in {source[:60]}` not evaluated"
            )
            return
        for item in values:
            self.assign(
                node.target,
                item if isinstance(item, V) else V(item, items.evidence),
                ns,
                node.lineno,
            )
            self.block(node.body, ns)

    def if_(self, node: ast.If, ns: dict[str, V]) -> None:
        test = self.expr(node.test, ns)
        truth = truthy(test)
        if truth is None:
            source = ast.unparse(
                node.test
            )  # not get_source_segment: it splits the whole file on each call
            truth = not _NON_PRODUCTION_CONDITION.search(source)
            self.notes.append(
                f"{self.path}:{node.lineno}: `if {source[:60]}` cannot be decided statically; "
                f"read the {'if' if truth else 'else'} branch"
            )
            if _sets_databases(node) and not _NON_PRODUCTION_CONDITION.search(source):
                self.undecided.append(
                    (
                        self.path,
                        node.lineno,
                        source[:80],
                        _engines(node.body) != _engines(node.orelse),
                    )
                )
        self.block(node.body if truth else node.orelse, ns)

    def import_from(self, node: ast.ImportFrom, ns: dict[str, V]) -> None:
        target: str | None
        if node.level:
            target = self.resolver.relative(self.path, node.level, node.module)
        else:
            target = self.resolver.find(node.module or "", near=self.path) if node.module else None
        star = any(alias.name == "*" for alias in node.names)
        if target is None:
            module = node.module or ""
            for alias in node.names:
                if alias.name != "*":
                    ns[alias.asname or alias.name] = V(
                        Ref(f"{module}.{alias.name}" if module else alias.name)
                    )
            if star and node.level:
                self.notes.append(
                    f"{self.path}:{node.lineno}: `from {'.' * node.level}{module} import *` not found"
                )
            return
        if star:
            self.module(target, into=ns)
            return
        source_ns = self.module(target)
        for alias in node.names:
            if alias.name in source_ns:
                ns[alias.asname or alias.name] = source_ns[alias.name]
            else:
                sub = (
                    self.resolver.relative(target, 1, alias.name)
                    if target.endswith("__init__.py")
                    else None
                )
                ns[alias.asname or alias.name] = V(
                    Ref(f"module:{sub}" if sub else f"{node.module}.{alias.name}")
                )

    def assign(self, target: ast.expr, value: V, ns: dict[str, V], line: int) -> None:
        if isinstance(target, ast.Name):
            ns[target.id] = self.used_at(value, line)
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value, ns)
            key = self.expr(target.slice, ns)
            if (
                isinstance(container.value, dict)
                and key.known
                and isinstance(key.value, (str, int))
            ):
                container.value[key.value] = self.used_at(value, line)
            elif isinstance(container.value, list) and key.known and isinstance(key.value, int):
                try:
                    container.value[key.value] = self.used_at(value, line)
                except IndexError:
                    pass
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value.value if isinstance(value.value, (list, tuple)) else None
            for index, element in enumerate(target.elts):
                item = (
                    items[index]
                    if items is not None and index < len(items)
                    else V(UNKNOWN, value.evidence)
                )
                self.assign(
                    element, item if isinstance(item, V) else V(item, value.evidence), ns, line
                )
        elif isinstance(target, ast.Attribute):
            owner = self.expr(target.value, ns)
            if (
                isinstance(owner.value, Ref)
                and owner.value.name == "env-reader"
                and target.attr == "prefix"
                and isinstance(owner.value.data, dict)
                and isinstance(value.value, str)
            ):
                owner.value.data["\x00prefix"] = (
                    value.value
                )  # django-environ's `env.prefix = "APP_"`
                return
            if isinstance(owner.value, Ref) and owner.value.name.startswith("celery-conf"):
                ns.setdefault("__celery_conf__", V({}))
                ns["__celery_conf__"].value[target.attr] = self.used_at(value, line)

    def call_statement(self, call: ast.Call, ns: dict[str, V]) -> None:
        """`DATABASES["default"].update({...})`, `app.conf.update(...)`, `LIST.append(x)`,
        django-split-settings `include(...)`; other calls are not run."""
        func = call.func
        target = self.expr(func, ns)
        if isinstance(target.value, Ref) and target.value.name.endswith(
            "split_settings.tools.include"
        ):
            self.split_settings_include(call, ns)
            return
        if isinstance(func, ast.Attribute) and func.attr in ("append", "extend", "insert"):
            # `DATABASE_ROUTERS.append("core.db_routers.Router")`: the list grows in place.
            owner = self.expr(func.value, ns)
            items = [self.expr(arg, ns) for arg in call.args]
            if isinstance(owner.value, list) and items:
                if func.attr == "append":
                    owner.value.append(self.used_at(items[0], call.lineno))
                elif func.attr == "insert" and len(items) == 2 and isinstance(items[0].value, int):
                    owner.value.insert(items[0].value, self.used_at(items[1], call.lineno))
                elif func.attr == "extend" and isinstance(items[0].value, list):
                    owner.value.extend(self.used_at(v, call.lineno) for v in items[0].value)
            return
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "update"
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id in ("globals", "locals", "vars")
            and not func.value.args
            and len(call.args) == 1
        ):
            # `globals().update(settings)`: the module's names are the dict's (when it is known;
            # otherwise nothing is set and DATABASES stays unread: settings_gaps says why).
            other = self.expr(call.args[0], ns)
            if isinstance(other.value, dict):
                for k, v in other.value.items():
                    if isinstance(k, str):
                        ns[k] = self.used_at(v, call.lineno)
            return
        if isinstance(func, ast.Attribute) and func.attr in ("update", "setdefault"):
            owner = self.expr(func.value, ns)
            if isinstance(owner.value, dict):
                if func.attr == "update":
                    for arg in call.args:
                        other = self.expr(arg, ns)
                        if isinstance(other.value, dict):
                            for k, v in other.value.items():
                                owner.value[k] = self.used_at(v, call.lineno)
                    for kw in call.keywords:
                        if kw.arg:
                            owner.value[kw.arg] = self.used_at(self.expr(kw.value, ns), call.lineno)
                elif call.args:
                    key = self.expr(call.args[0], ns)
                    if key.known and key.value not in owner.value and len(call.args) > 1:
                        owner.value[key.value] = self.used_at(
                            self.expr(call.args[1], ns), call.lineno
                        )
            elif isinstance(owner.value, Ref) and owner.value.name.startswith("celery-conf"):
                conf = ns.setdefault("__celery_conf__", V({}))
                for kw in call.keywords:
                    if kw.arg:
                        conf.value[kw.arg] = self.used_at(self.expr(kw.value, ns), call.lineno)

    def split_settings_include(self, call: ast.Call, ns: dict[str, V]) -> None:
        """`include("components/base.py", optional("local_settings.py"))` runs each file (a
        glob, relative to this one) in this namespace, like a star import; an `optional`
        file that is not in the repository is skipped."""
        folder = self.path.rsplit("/", 1)[0] if "/" in self.path else ""
        for arg in call.args:
            optional = isinstance(arg, ast.Call) and bool(arg.args)
            pattern = self.expr(arg.args[0] if isinstance(arg, ast.Call) and optional else arg, ns)
            if not isinstance(pattern.value, str):
                continue
            wanted = join(folder, pattern.value)
            matches = (
                [p for p in self.repo.paths if fnmatch.fnmatchcase(p, wanted)]
                if any(c in wanted for c in "*?[")
                else ([wanted] if self.repo.has(wanted) else [])
            )
            if not matches and not optional:
                self.notes.append(
                    f"{self.path}:{call.lineno}: include({pattern.value!r}) not found"
                )
            for path in sorted(matches):
                self.module(path, into=ns)

    # ------------------------------------------------------------------ expressions

    def ev(
        self, line: int | None, resolution: Resolution = Resolution.LITERAL, note: str = ""
    ) -> Evidence:
        return Evidence(self.path, line, self.repo.quote(self.path, line), resolution, note)

    def used_at(self, value: V, line: int) -> V:
        """The value, with the line that put it here added to its evidence."""
        here = (self.path, line)
        if any((e.path, e.line) == here for e in value.evidence):
            return value
        resolution = value.evidence[0].resolution if value.evidence else Resolution.LITERAL
        return dataclasses.replace(value, evidence=(self.ev(line, resolution),) + value.evidence)

    def expr(self, node: ast.expr, ns: dict[str, V]) -> V:
        if isinstance(node, ast.Constant):
            return V(node.value, (self.ev(node.lineno),))
        if isinstance(node, ast.Name):
            if node.id in ns:
                return ns[node.id]
            builtin = {"True": True, "False": False, "None": None}
            if node.id in builtin:
                return V(builtin[node.id])
            if node.id in (
                "int",
                "str",
                "bool",
                "float",
                "dict",
                "list",
                "tuple",
                "set",
                "len",
                "max",
                "min",
                "sorted",
                "vars",
            ):
                return V(Ref(f"builtin:{node.id}"))
            return V(UNKNOWN, (self.ev(node.lineno),))
        if isinstance(node, ast.Dict):
            out: dict[Any, V] = {}
            for key_node, value_node in zip(node.keys, node.values, strict=True):
                value = self.expr(value_node, ns)
                if key_node is None:  # {**other}
                    if isinstance(value.value, dict):
                        out.update(
                            {k: self.used_at(v, node.lineno) for k, v in value.value.items()}
                        )
                    continue
                key = self.expr(key_node, ns)
                if (key.known and isinstance(key.value, (str, int, bool))) or key.value is None:
                    out[key.value] = value
            return V(out, (self.ev(node.lineno),))
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items: list[V] = []
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    inner = self.expr(element.value, ns)
                    if isinstance(inner.value, list):
                        items.extend(inner.value)
                    continue
                items.append(self.expr(element, ns))
            return V(items, (self.ev(node.lineno),))
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.expr(node.left, ns), self.expr(node.right, ns), node)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand, ns)
            if isinstance(node.op, ast.Not):
                truth = truthy(operand)
                return V(
                    UNKNOWN if truth is None else not truth,
                    operand.evidence,
                    operand.env_var,
                    operand.env_default,
                )
            if (
                isinstance(node.op, ast.USub)
                and isinstance(operand.value, (int, float))
                and not isinstance(operand.value, bool)
            ):
                return dataclasses.replace(operand, value=-operand.value)
            return V(UNKNOWN, operand.evidence)
        if isinstance(node, ast.BoolOp):
            values = [self.expr(v, ns) for v in node.values]
            for value in values:
                truth = truthy(value)
                if truth is None:
                    return V(UNKNOWN, value.evidence, value.env_var)
                if isinstance(node.op, ast.Or) and truth:
                    return value
                if isinstance(node.op, ast.And) and not truth:
                    return value
            return values[-1]
        if isinstance(node, ast.Compare):
            return self.compare(node, ns)
        if isinstance(node, ast.IfExp):
            truth = truthy(self.expr(node.test, ns))
            if truth is None:
                return V(UNKNOWN, (self.ev(node.lineno),))
            return self.expr(node.body if truth else node.orelse, ns)
        if isinstance(node, ast.Subscript):
            container = self.expr(node.value, ns)
            key = self.expr(node.slice, ns)
            if isinstance(container.value, dict) and key.known:
                found = container.value.get(key.value)
                return found if found is not None else V(UNKNOWN, container.evidence)
            if isinstance(container.value, list) and isinstance(key.value, int):
                try:
                    return container.value[key.value]
                except IndexError:
                    return V(UNKNOWN)
            if (
                isinstance(container.value, Ref)
                and container.value.name == "os.environ"
                and key.known
            ):
                if (
                    self.catching_key_errors
                    and self.env.complete
                    and self.env.get(str(key.value)) is None
                ):
                    raise EnvKeyMissing(str(key.value))  # inside `try: ... except KeyError:` only
                return self.env_lookup(str(key.value), None, None, node)
            return V(UNKNOWN, container.evidence)
        if isinstance(node, ast.Attribute):
            owner = self.expr(node.value, ns)
            if isinstance(owner.value, Ref) and isinstance(owner.value.data, Instance):
                found = attribute(owner, node.attr)
                return found if found is not None else V(UNKNOWN, owner.evidence)
            if isinstance(owner.value, Ref):
                if owner.value.name.startswith("celery-app") and node.attr == "conf":
                    return V(Ref("celery-conf"))
                return V(Ref(f"{owner.value.name}.{node.attr}", owner.value.data))
            return V(UNKNOWN, owner.evidence)
        if isinstance(node, ast.Call):
            return self.call(node, ns)
        if isinstance(node, ast.DictComp):
            return self.dict_comprehension(node, ns)
        if isinstance(node, ast.NamedExpr):  # `if v := os.getenv("X"):`
            value = self.expr(node.value, ns)
            self.assign(node.target, value, ns, node.lineno)
            return value
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            evidence: tuple[Evidence, ...] = ()
            for piece in node.values:
                if isinstance(piece, ast.Constant):
                    parts.append(str(piece.value))
                elif isinstance(piece, ast.FormattedValue):
                    inner = self.expr(piece.value, ns)
                    if not inner.known or isinstance(inner.value, (dict, list, Ref)):
                        return V(UNKNOWN, inner.evidence, inner.env_var)
                    parts.append(str(inner.value))
                    evidence += inner.evidence
            return V("".join(parts), evidence or (self.ev(node.lineno),))
        return V(UNKNOWN, (self.ev(getattr(node, "lineno", None)),))

    MAX_COMPREHENSION = 1000  # a settings module's names, filtered

    def dict_comprehension(self, node: ast.DictComp, ns: dict[str, V]) -> V:
        """`{k: v for (k, v) in vars(base).items() if k.isupper()}`: one generator over a list
        the settings hold, every filter decided for every item. Anything undecided makes the
        whole dict unknown (never a dict with items silently missing)."""
        unknown = V(UNKNOWN, (self.ev(node.lineno),))
        if len(node.generators) != 1 or node.generators[0].is_async:
            return unknown
        generator = node.generators[0]
        source = self.expr(generator.iter, ns)
        if not isinstance(source.value, list) or len(source.value) > self.MAX_COMPREHENSION:
            return unknown
        out: dict[Any, V] = {}
        for item in source.value:
            scope = dict(ns)
            self.assign(generator.target, item, scope, node.lineno)
            truths = [truthy(self.expr(test, scope)) for test in generator.ifs]
            if None in truths:
                return unknown
            if not all(truths):
                continue
            key = self.expr(node.key, scope)
            if not key.known or not isinstance(key.value, (str, int, bool)):
                return unknown
            out[key.value] = self.expr(node.value, scope)
        return V(out, (self.ev(node.lineno),))

    def binop(self, op: ast.operator, left: V, right: V, node: ast.AST) -> V:
        evidence = left.evidence + right.evidence
        a, b = left.value, right.value
        if a is UNKNOWN or b is UNKNOWN:
            return V(UNKNOWN, evidence, left.env_var or right.env_var)
        try:
            if (
                isinstance(op, ast.Add)
                and type(a) is type(b)
                and isinstance(a, (int, float, str, list))
            ):
                return V(a + b, evidence)
            if isinstance(a, bool) or isinstance(b, bool):
                return V(UNKNOWN, evidence)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                ops: dict[type, Callable[[Any, Any], Any]] = {
                    ast.Add: lambda x, y: x + y,
                    ast.Sub: lambda x, y: x - y,
                    ast.Mult: lambda x, y: x * y,
                    ast.FloorDiv: lambda x, y: x // y,
                    ast.Div: lambda x, y: x / y,
                    ast.Mod: lambda x, y: x % y,
                    ast.Pow: lambda x, y: x**y if y < 64 else UNKNOWN,
                }
                fn = ops.get(type(op))
                return V(
                    fn(a, b) if fn else UNKNOWN,
                    evidence,
                    left.env_var or right.env_var,
                    left.env_default,
                )
            if isinstance(op, ast.BitOr) and isinstance(a, dict) and isinstance(b, dict):
                return V({**a, **b}, evidence)
            if isinstance(op, ast.Mod) and isinstance(a, str):
                return V(UNKNOWN, evidence)
        except (ArithmeticError, TypeError, ValueError):
            pass
        return V(UNKNOWN, evidence)

    def compare(self, node: ast.Compare, ns: dict[str, V]) -> V:
        left = self.expr(node.left, ns)
        evidence = left.evidence
        result = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.expr(comparator, ns)
            evidence += right.evidence
            if (
                isinstance(op, (ast.In, ast.NotIn))
                and isinstance(right.value, Ref)
                and right.value.name == "os.environ"
            ):
                right = self.environ_contains(left)
                if not right.known:
                    return V(UNKNOWN, evidence)
                result = result and (right.value if isinstance(op, ast.In) else not right.value)
                left = right
                continue
            a, b = left.plain(), right.plain()
            if a is UNKNOWN or b is UNKNOWN or _contains_unknown(a) or _contains_unknown(b):
                return V(UNKNOWN, evidence, left.env_var or right.env_var)
            try:
                if isinstance(op, ast.Eq):
                    ok = a == b
                elif isinstance(op, ast.NotEq):
                    ok = a != b
                elif isinstance(op, ast.In):
                    ok = a in b
                elif isinstance(op, ast.NotIn):
                    ok = a not in b
                elif isinstance(op, ast.Is):
                    ok = a is b
                elif isinstance(op, ast.IsNot):
                    ok = a is not b
                elif isinstance(op, ast.Gt):
                    ok = a > b
                elif isinstance(op, ast.GtE):
                    ok = a >= b
                elif isinstance(op, ast.Lt):
                    ok = a < b
                elif isinstance(op, ast.LtE):
                    ok = a <= b
                else:
                    return V(UNKNOWN, evidence)
            except TypeError:
                return V(UNKNOWN, evidence)
            result = result and ok
            left = right
        return V(result, evidence)

    # ------------------------------------------------------------------ calls

    def call(self, node: ast.Call, ns: dict[str, V]) -> V:
        func = self.expr(node.func, ns)
        args = [self.expr(a, ns) for a in node.args if not isinstance(a, ast.Starred)]
        kwargs = {kw.arg: self.expr(kw.value, ns) for kw in node.keywords if kw.arg}
        ref = func.value.name if isinstance(func.value, Ref) else None
        data = func.value.data if isinstance(func.value, Ref) else None
        if isinstance(data, UserFunction):
            return call_user_function(self, data, args, kwargs, node.lineno)
        if isinstance(data, UserClass):
            return instantiate(self, data, args, kwargs, node.lineno)
        if isinstance(data, BoundMethod):
            return call_user_function(
                self, data.function, [data.instance, *args], kwargs, node.lineno
            )
        if ref is None:
            # methods of values we hold: "x".lower(), DATABASES.get("default"), ...
            if isinstance(node.func, ast.Attribute):
                owner = self.expr(node.func.value, ns)
                return self.method(owner, node.func.attr, args, kwargs)
            return V(UNKNOWN, (self.ev(node.lineno),))
        name = ref.rsplit(".", 1)[-1]
        # --- environment look-ups ------------------------------------------------
        if ref in ("os.environ.get", "os.getenv", "os.environ.setdefault", "getenv", "environ.get"):
            var = _const_str(args[0]) if args else None
            default = args[1] if len(args) > 1 else kwargs.get("default")
            return (
                self.env_lookup(var, default, None, node, unset_is_none=True) if var else V(UNKNOWN)
            )
        if ref in ("cfenv.AppEnv", "AppEnv"):
            return V(Ref("cfenv-appenv"))
        if ref == "cfenv-appenv.get_credential":
            # cfenv: a bound service's credential of that name, else os.getenv(key, default).
            # Service credentials live in the platform, not the repository: read as the variable.
            var = _const_str(args[0]) if args else _const_str(kwargs.get("key"))
            default = args[1] if len(args) > 1 else kwargs.get("default")
            found = (
                self.env_lookup(var, default, None, node, unset_is_none=True) if var else V(UNKNOWN)
            )
            if var and found.env_default:
                note = (
                    f"{var}: cfenv reads a bound service's credential first (not in the "
                    f"repository), then the variable; neither is set in any file read: "
                    + (f"default {found.value!r}" if default is not None else "None")
                )
                found = dataclasses.replace(
                    found, evidence=(self.ev(node.lineno, Resolution.ENV_DEFAULT, note),)
                )
            return found
        if ref in ("environ.Env", "environs.Env", "Env", "environ.FileAwareEnv"):
            scheme = {}
            for key, spec in kwargs.items():
                plain = spec.plain()
                if isinstance(plain, list) and len(plain) == 2:
                    scheme[key] = (getattr(plain[0], "name", str(plain[0])), spec.value[1])
            return V(Ref("env-reader", scheme))
        if ref.startswith("env-reader") or ref in (
            "decouple.config",
            "config",
            "decouple.AutoConfig",
        ):
            reader = ref.split(".")[1] if ref.startswith("env-reader.") else "__call__"
            decouple = not ref.startswith("env-reader")
            return self.env_reader_call(reader, args, kwargs, data or {}, node, decouple)
        # --- database URLs ------------------------------------------------------------
        if ref in ("dj_database_url.config", "dj_database_url.parse") or ref.endswith(
            ("db_url.config", "db_url.parse")
        ):
            return self.dj_database_url(name, args, kwargs, node)
        # --- Celery app object, for `app.conf.worker_concurrency = 4` --------------------
        if ref in ("celery.Celery", "Celery"):
            return V(Ref("celery-app"))
        if ref.startswith("configurations.values.") and name.endswith("Value"):
            return self.configurations_value(args, kwargs, node)
        if ref in ("json.loads",) and args:
            return json_value(args[0])
        # --- builtins --------------------------------------------------------------------
        if ref == "builtin:vars" and len(args) == 1:
            return self.module_vars(args[0], node)
        if ref in ("copy.deepcopy", "copy.copy") and len(args) == 1:
            return args[0]  # the values are read, never changed in place afterwards
        if ref.startswith("builtin:"):
            return self.builtin(ref.split(":", 1)[1], args, kwargs)
        if ref in ("distutils.util.strtobool", "strtobool") and args:
            value = args[0]
            return (
                dataclasses.replace(value, value=cast_value(str(value.value), "bool"))
                if value.known
                else value
            )
        return V(UNKNOWN, (self.ev(node.lineno),))

    def configurations_value(self, args: list[V], kwargs: dict[str, V], node: ast.Call) -> V:
        """`values.Value("meet", environ_name="DB_NAME", environ_prefix=None)`: the variable
        (DJANGO_ + environ_name unless environ_prefix says otherwise) when set, else the default.
        Without environ_name the variable is named after the attribute: its default is taken,
        with a note."""
        default = args[0] if args else kwargs.get("default", V(None, (self.ev(node.lineno),)))
        environ_name = _const_str(kwargs.get("environ_name"))
        if environ_name is None:
            return self.used_at(default, node.lineno)
        prefix = kwargs.get("environ_prefix", V("DJANGO"))
        if prefix.known and (prefix.value is None or isinstance(prefix.value, str)):
            var = f"{prefix.value}_{environ_name}" if prefix.value else environ_name
            return self.env_lookup(var, default, None, node, unset_is_none=True)
        return V(UNKNOWN, (self.ev(node.lineno),))

    def env_reader_call(
        self,
        reader: str,
        args: list[V],
        kwargs: dict[str, V],
        scheme: dict,
        node: ast.Call,
        decouple: bool = False,
    ) -> V:
        """django-environ `env(...)`, `env.int(...)`, `env.db(...)`; environs; python-decouple
        (`config("X", default, cast=int)`; django-environ's `env("X", cast, default)`)."""
        var = (
            _const_str(args[0])
            if args
            else _const_str(kwargs.get("var"))
            if kwargs.get("var")
            else None
        )
        if var is None and reader in ("db", "db_url", "dj_db_url", "database_url"):
            var = "DATABASE_URL"  # django-environ's `env.db()` reads DATABASE_URL
        if var is None:
            return V(UNKNOWN, (self.ev(node.lineno),))
        var = str(scheme.get("\x00prefix", "")) + var  # django-environ prefixes every name it reads
        default = kwargs.get("default")
        if default is None and len(args) > 1 and (reader != "__call__" or decouple):
            default = args[1]
        elif default is None and len(args) > 2 and reader == "__call__":
            default = args[2]
        if default is None and var in scheme:
            default = V(scheme[var][1].value if isinstance(scheme[var][1], V) else scheme[var][1])
        cast = {"int": "int", "bool": "bool", "float": "float", "list": "list", "str": "str"}.get(
            reader
        )
        if reader == "__call__":
            cast_kw = kwargs.get("cast")
            if cast_kw is not None and isinstance(cast_kw.value, Ref):
                cast_name = cast_kw.value.name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
                if cast_name in ("parse", "db_url", "dj_database_url"):
                    return self.db_url_from_env(var, default, node, {})
                cast = {"int": "int", "bool": "bool", "float": "float"}.get(cast_name)
            elif var in scheme:
                cast = (
                    scheme[var][0] if scheme[var][0] in ("int", "bool", "float", "list") else None
                )
        if reader == "json":
            return json_value(self.env_lookup(var, default, None, node))
        if reader in ("db", "db_url", "dj_db_url", "database_url"):
            extra = {k: v for k, v in kwargs.items() if k in ("conn_max_age", "conn_health_checks")}
            return self.db_url_from_env(var, default, node, extra)
        return self.env_lookup(var, default, cast, node)

    def environ_contains(self, name: V) -> V:
        """`"X" in os.environ`: known when X is set, or when the environment is complete."""
        if not name.known or not isinstance(name.value, str):
            return V(UNKNOWN)
        found = self.env.get(name.value)
        if found is not None:
            return V(True, (found.evidence,))
        return V(False) if self.env.complete else V(UNKNOWN)

    def env_lookup(
        self,
        var: str,
        default: V | None,
        cast: str | None,
        node: ast.AST,
        unset_is_none: bool = False,
    ) -> V:
        """A variable's value from the environment read. With `unset_is_none` (os.getenv,
        os.environ.get), a variable set nowhere is None when the process's environment is
        complete (a compose service whose env files are all in the repository)."""
        line = getattr(node, "lineno", None)
        found = self.env.get(var)
        if found is not None and found.value != UNKNOWN_VALUE:
            value = cast_value(found.value, cast)
            REDACTOR.register_named(var, found.value)
            note = f"{var}={redact_value(var, found.value)} from {found.evidence.location()}"
            here = self.ev(line, found.evidence.resolution, note)
            return V(value, (here, found.evidence), var)
        if found is not None:  # set by a script to something computed at run time
            return V(
                UNKNOWN,
                (
                    self.ev(line, Resolution.LITERAL, f"{var} is computed at run time"),
                    found.evidence,
                ),
                var,
            )
        if default is not None:
            value = default.value
            if isinstance(value, str) and cast:
                value = cast_value(value, cast)
            note = f"{var} is not set in any file read; default {value!r}"
            return V(value, (self.ev(line, Resolution.ENV_DEFAULT, note),), var, env_default=True)
        if unset_is_none and self.env.complete:
            note = f"{var} is not set in the process's environment: None"
            return V(None, (self.ev(line, Resolution.ENV_DEFAULT, note),), var, env_default=True)
        return V(
            UNKNOWN,
            (self.ev(line, Resolution.ENV_DEFAULT, f"{var} is not set in any file read"),),
            var,
        )

    def db_url_from_env(
        self, var: str, default: V | None, node: ast.Call, extra: dict[str, V]
    ) -> V:
        url = self.env_lookup(var, default, None, node)
        if url.known and isinstance(url.value, str):
            entry = parse_db_url(url.value, url.evidence, var)
        else:
            entry = unknown_db(url.evidence, var)
        for key, value in extra.items():
            entry[key.upper()] = value
        return V(entry, url.evidence, var)

    def dj_database_url(self, name: str, args: list[V], kwargs: dict[str, V], node: ast.Call) -> V:
        where = (self.ev(node.lineno),)
        if name == "config":
            var = _const_str(kwargs["env"]) if "env" in kwargs else "DATABASE_URL"
            default = kwargs.get("default") or (args[0] if args else None)
            result = self.db_url_from_env(var or "DATABASE_URL", default, node, {})
            entry = result.value
        else:
            url = args[0] if args else kwargs.get("url")
            if url is not None and url.known and isinstance(url.value, str):
                entry = parse_db_url(url.value, url.evidence or where, url.env_var)
            else:
                entry = unknown_db(url.evidence if url else where, url.env_var if url else None)
            result = V(entry, where)
        # dj-database-url always sets these two keys (defaults 0 and False).
        entry["CONN_MAX_AGE"] = kwargs.get("conn_max_age") or V(
            0,
            (
                self.ev(
                    node.lineno,
                    Resolution.LIBRARY_DEFAULT,
                    "dj_database_url default conn_max_age=0",
                ),
            ),
        )
        entry["CONN_HEALTH_CHECKS"] = kwargs.get("conn_health_checks") or V(False, where)
        if "ssl_require" in kwargs:
            entry.setdefault("OPTIONS", V({}, where))
        return result

    def module_vars(self, module: V, node: ast.Call) -> V:
        """`vars(base)` of a settings module of the repository (`from pkg.settings import base`):
        its names as a dict, evaluated as that module would be."""
        ref = module.value.name if isinstance(module.value, Ref) else ""
        if not ref.startswith("module:"):
            return V(UNKNOWN, (self.ev(node.lineno),))
        return V(dict(self.module(ref.split(":", 1)[1])), (self.ev(node.lineno),))

    def builtin(self, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        if name == "dict":
            merged: dict[Any, V] = {}
            for arg in args:
                if isinstance(arg.value, dict):
                    merged.update(arg.value)
            merged.update(kwargs)
            return V(merged)
        if not args:
            return V(UNKNOWN)
        value = args[0]
        if not value.known:
            return value
        try:
            if name == "int":
                return dataclasses.replace(value, value=int(value.value))
            if name == "float":
                return dataclasses.replace(value, value=float(value.value))
            if name == "str":
                return dataclasses.replace(value, value=str(value.value))
            if name == "bool":
                # Python's truthiness: bool("False") is True, bool("") is False.
                return dataclasses.replace(value, value=bool(_plain(value.value)))
            if name in ("list", "tuple"):
                return value if isinstance(value.value, list) else V(UNKNOWN, value.evidence)
            if name in ("max", "min") and all(
                a.known and isinstance(a.value, (int, float)) for a in args
            ):
                pick = max if name == "max" else min
                return V(pick(a.value for a in args), tuple(e for a in args for e in a.evidence))
        except (TypeError, ValueError):
            pass
        return V(UNKNOWN, value.evidence, value.env_var)

    def method(self, owner: V, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        value = owner.value
        if isinstance(value, str):
            if name in ("lower", "upper", "strip", "title"):
                return dataclasses.replace(owner, value=getattr(value, name)())
            if name == "split":
                sep = args[0].value if args and args[0].known else None
                return dataclasses.replace(
                    owner, value=[V(s, owner.evidence) for s in value.split(sep)]
                )
            if name in ("startswith", "endswith") and args and args[0].known:
                return dataclasses.replace(owner, value=getattr(value, name)(args[0].value))
            if name in ("isupper", "islower", "isdigit", "isidentifier") and not args:
                return dataclasses.replace(owner, value=getattr(value, name)())
        if isinstance(value, dict) and name == "get" and args and args[0].known:
            found = value.get(args[0].value)
            if found is not None:
                return found
            return args[1] if len(args) > 1 else V(None)
        if isinstance(value, dict) and name == "copy":
            return V(dict(value), owner.evidence)
        if isinstance(value, dict) and name == "items" and not args:
            return V([V([V(k, owner.evidence), v]) for k, v in value.items()], owner.evidence)
        return V(UNKNOWN, owner.evidence, owner.env_var)


def json_value(text: V) -> V:
    """`json.loads(...)` of a string we know (`APP_DATABASES='{"default": {...}}'` in an env
    file), as nested `V`s carrying the string's evidence; UNKNOWN otherwise."""
    if not text.known or not isinstance(text.value, str):
        return V(UNKNOWN, text.evidence, text.env_var)
    try:
        parsed = json.loads(text.value)
    except ValueError:
        return V(UNKNOWN, text.evidence, text.env_var)

    def wrap(item: Any) -> V:
        if isinstance(item, dict):
            REDACTOR.publish(
                *(str(item[k]) for k in ("USER", "NAME") if isinstance(item.get(k), str))
            )
            for key, value in item.items():
                if isinstance(value, str):
                    REDACTOR.register_named(str(key), value)
            return V({k: wrap(v) for k, v in item.items()}, text.evidence, text.env_var)
        if isinstance(item, list):
            return V([wrap(v) for v in item], text.evidence, text.env_var)
        return V(item, text.evidence, text.env_var)

    return wrap(parsed)


def _assigns(body: list[ast.stmt], name: str) -> bool:
    """Whether a class body assigns `name` at its own level."""
    return any(
        isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == name
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in body
    )


def _engines(body: list[ast.stmt]) -> set[str]:
    """The database engines a branch names (`django.db.backends.sqlite3`, `sqlite://` URLs)."""
    found: set[str] = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith("django.db.backends."):
                    found.add(node.value.rsplit(".", 1)[-1])
                elif "://" in node.value:
                    found.add(node.value.split("://", 1)[0])
    return found


def _sets_databases(node: ast.If) -> bool:
    """Whether either branch of an `if` assigns DATABASES (or one of its entries)."""
    for statement in ast.walk(node):
        targets = (
            statement.targets
            if isinstance(statement, ast.Assign)
            else [statement.target]
            if isinstance(statement, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        for target in targets:
            root = target
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "DATABASES":
                return True
    return False


def truthy(value: V) -> bool | None:
    plain = value.value
    if plain is UNKNOWN or isinstance(plain, Ref):
        return None
    if isinstance(plain, (dict, list)):
        return bool(plain)
    try:
        return bool(plain)
    except TypeError:
        return None


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False


def _const_str(value: V | None) -> str | None:
    return value.value if value is not None and isinstance(value.value, str) else None
