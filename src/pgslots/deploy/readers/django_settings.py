"""Django settings: which module production uses, and what its DATABASES say.

The module is found the way Django finds it, from `DJANGO_SETTINGS_MODULE`: in the
environment of the process (env files, compose, start scripts, Kubernetes), else the
`os.environ.setdefault(...)` of `wsgi.py`/`asgi.py`/`manage.py`. Production wins over
local/test/dev modules, and the report says which was chosen and why.
"""

from __future__ import annotations

import ast
import dataclasses
import re

from pgslots.deploy.model import AliasFact, Quantity, SettingGap
from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.envfiles import Env
from pgslots.deploy.readers.pyeval import UNKNOWN, Evaluation, Evaluator, ModuleResolver, V
from pgslots.deploy.readers.pysource import parse_source
from pgslots.evidence import Evidence, Resolution

_SETDEFAULT = re.compile(
    r"""DJANGO_SETTINGS_MODULE['"]\s*[,:=]\s*f?['"](?P<module>[A-Za-z_][\w.]*)['"]"""
)
_NON_PRODUCTION = re.compile(
    r"(^|[._])(local|dev|develop|development|test|tests|testing|ci|debug)([._]|$)"
)
_PRODUCTION = re.compile(r"(^|[._])(production|prod|live|deploy)([._]|$)")


@dataclasses.dataclass(frozen=True)
class SettingsChoice:
    module: str
    path: str
    reason: str
    evidence: tuple[Evidence, ...] = ()


def settings_score(module: str) -> int:
    if _PRODUCTION.search(module):
        return 10
    if _NON_PRODUCTION.search(module):
        return -10
    return 0


def declared_modules(repo: RepoFiles) -> list[tuple[str, Evidence]]:
    """`DJANGO_SETTINGS_MODULE` defaults written in Python entry points (manage.py, wsgi.py, ...)."""
    found: list[tuple[str, Evidence]] = []
    names = ("manage.py", "wsgi.py", "asgi.py", "celery.py", "celery_app.py", "__main__.py")
    for rel in repo.named(*names):
        for number, line in enumerate(repo.lines(rel), start=1):
            match = _SETDEFAULT.search(line)
            if match:
                found.append(
                    (match["module"], Evidence(rel, number, line.strip(), Resolution.LITERAL))
                )
    return found


_ASIDE = re.compile(
    r"(^|/)(benchmarks?|examples?|samples?|demos?|docs?|tests?|testing|fixtures|sandbox|contrib)/"
)


def _aside(evidence: Evidence | None) -> bool:
    """An entry point in a folder beside the project (a benchmark or example app), not its own."""
    return bool(evidence and _ASIDE.search(evidence.path))


def choose_settings(
    repo: RepoFiles, resolver: ModuleResolver, envs: list[Env], shipped: tuple[str, ...] = ()
) -> SettingsChoice | None:
    """The production settings module, from the processes' environments, then the code.
    `shipped`: folders the deployment's images copy in; among equal settings files, one there
    is the one the processes run (two projects in one tree, one image each)."""
    candidates: list[
        tuple[int, int, str, str, Evidence | None]
    ] = []  # (score, source rank, module, why, ev)
    for env in envs:
        item = env.get("DJANGO_SETTINGS_MODULE")
        if item and item.value:
            candidates.append(
                (
                    settings_score(item.value),
                    2,
                    item.value,
                    f"DJANGO_SETTINGS_MODULE at {item.evidence.location()}",
                    item.evidence,
                )
            )
    for module, evidence in declared_modules(repo):
        candidates.append(
            (settings_score(module), 1, module, f"the default in {evidence.location()}", evidence)
        )

    # Among equals, the project's own entry points (a root manage.py) over ones in benchmarks,
    # examples, docs or tests folders, then the shallowest.
    def unshipped(cited: Evidence | None) -> bool:
        return bool(shipped) and not (cited is not None and _in_shipped(cited.path, shipped))

    ranked = sorted(
        candidates,
        key=lambda c: (
            -c[0],
            -c[1],
            unshipped(c[4]),
            _aside(c[4]),
            c[4].path.count("/") if c[4] else 0,
        ),
    )
    rejected = sorted({c[2] for c in ranked if c[0] < 0})
    for score, _, module, why, cited in ranked:
        # `python manage.py` puts manage.py's folder first on sys.path: the module beside it.
        beside_entry = (
            f"{cited.path.rsplit('/', 1)[0]}/{module.replace('.', '/')}.py"
            if cited is not None and "/" in cited.path
            else None
        )
        path = beside_entry if beside_entry and repo.has(beside_entry) else resolver.find(module)
        if path is None:
            continue
        if score < 0:
            beside = _production_beside(repo, module, path)
            if beside is not None:
                # Only development settings are named (manage.py's default): the package's own
                # production module is what production runs with DJANGO_SETTINGS_MODULE set there.
                return SettingsChoice(
                    beside[0],
                    beside[1],
                    f"{module} is named ({why}) but is development settings; "
                    f"{beside[1]} is the production module beside it",
                    (cited,) if cited else (),
                )
        reason = why
        if rejected and score >= 0:
            reason += f"; preferred over {', '.join(rejected)} (local/test settings)"
        elif score < 0:
            reason += " (only local/test settings were found)"
        return SettingsChoice(module, path, reason, (cited,) if cited else ())
    # No DJANGO_SETTINGS_MODULE anywhere: look for a settings file that defines DATABASES.
    files = [
        p for p in repo.paths if p.endswith(".py") and re.search(r"(^|/)settings(/[^/]+)?\.py$", p)
    ]
    files = [p for p in files if "DATABASES" in (repo.text(p) or "")]
    if not files:
        return None
    best = max(
        files,
        key=lambda p: (
            settings_score(p.replace("/", ".")),
            _in_shipped(p, shipped),
            -p.count("/"),
        ),
    )
    module = best[:-3].replace("/", ".")
    return SettingsChoice(
        module,
        best,
        f"{best}: no DJANGO_SETTINGS_MODULE found; the settings file that defines DATABASES",
    )


def _in_shipped(path: str, shipped: tuple[str, ...]) -> bool:
    """Whether an image copies `path` in (`COPY . /app` copies everything)."""
    return any(
        folder in (".", "", "./")
        or path == folder.rstrip("/")
        or path.startswith(folder.rstrip("/") + "/")
        for folder in shipped
    )


def _production_beside(repo: RepoFiles, module: str, path: str) -> tuple[str, str] | None:
    """The one production-named settings module in the same package as `path` (`settings/production.py`
    beside `settings/local.py`), as (module, path)."""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    package = module.rsplit(".", 1)[0] if "." in module else ""
    found = [
        p
        for p in repo.paths
        if p.rsplit("/", 1)[0] == folder
        and p.endswith(".py")
        and settings_score(p.rsplit("/", 1)[-1][:-3]) > 0
    ]
    if len(found) != 1 or not package:
        return None
    return f"{package}.{found[0].rsplit('/', 1)[-1][:-3]}", found[0]


@dataclasses.dataclass
class SettingsRead:
    """One evaluation of the settings for one environment."""

    choice: SettingsChoice
    evaluation: Evaluation

    @property
    def ns(self) -> dict[str, V]:
        return self.evaluation.namespace

    def get(self, name: str) -> V | None:
        return self.ns.get(name)

    def databases(self) -> dict[str, V]:
        value = self.ns.get("DATABASES")
        if value is None or not isinstance(value.value, dict):
            return {}
        return {
            k: v for k, v in value.value.items() if isinstance(v, V) and isinstance(v.value, dict)
        }

    def celery(self, name: str) -> V | None:
        """A Celery setting under its Django (CELERY_ namespace) or old or app.conf names."""
        conf = self.ns.get("__celery_conf__")
        lower = name.lower()
        if conf is not None and isinstance(conf.value, dict) and lower in conf.value:
            return conf.value[lower]
        old = {
            "worker_concurrency": "CELERYD_CONCURRENCY",
            "worker_pool": "CELERYD_POOL",
            "beat_scheduler": "CELERYBEAT_SCHEDULER",
        }
        for key in (f"CELERY_{name.upper()}", old.get(lower, ""), name.upper()):
            if key and key in self.ns:
                return self.ns[key]
        return None


def read_settings(
    repo: RepoFiles, choice: SettingsChoice, env: Env, resolver: ModuleResolver, trees: dict
) -> SettingsRead:
    evaluator = Evaluator(repo, env, resolver, trees)
    return SettingsRead(choice, evaluator.run(choice.path))


# ----------------------------------------------------------------------------- facts


def field(entry: dict[str, V], key: str) -> V | None:
    value = entry.get(key)
    return value if isinstance(value, V) else None


def alias_facts(read: SettingsRead) -> list[AliasFact]:
    """Every DATABASES alias, and whether it points at the same server as `default`."""
    databases = read.databases()
    default = databases.get("default")
    out: list[AliasFact] = []
    for name, entry in databases.items():
        items = entry.value
        engine = _text(field(items, "ENGINE"))
        host = _server_key(field(items, "HOST"))
        port = _server_key(field(items, "PORT"))
        same: bool | None = True
        if name != "default" and default is not None:
            d_host = _server_key(field(default.value, "HOST"))
            d_port = _server_key(field(default.value, "PORT"))
            same = (
                _same(host, d_host)
                if _same(host, d_host) is not True
                else _same(port or "5432", d_port or "5432")
            )
        out.append(
            AliasFact(
                name=name,
                engine=engine,
                host=host,
                port=port,
                database=_text(field(items, "NAME")),
                user=_text(field(items, "USER")),
                same_server=same,
                evidence=entry.evidence[:3],
            )
        )
    return out


def _text(value: V | None) -> str | None:
    if value is None:
        return None
    if value.value is UNKNOWN:
        return f"${value.env_var}" if value.env_var else None
    return None if value.value is None else str(value.value)


def _server_key(value: V | None) -> str | None:
    """A comparable host: the literal value, or `$VAR` when it comes from an unset variable."""
    return _text(value)


def _same(a: str | None, b: str | None) -> bool | None:
    if a is None and b is None:
        return True
    if a is None or b is None:
        return None if (a or b or "").startswith("$") else a == b
    if a == b:
        return True
    if a.startswith("$") or b.startswith("$"):
        return None
    local = {"localhost", "127.0.0.1", "::1", ""}
    return a in local and b in local


def quantity_of(value: V | None, unknown: str | None = None) -> Quantity:
    if value is None:
        return Quantity(None, (), unknown)
    if value.known and isinstance(value.value, int) and not isinstance(value.value, bool):
        return Quantity(value.value, value.evidence)
    return Quantity(None, value.evidence, unknown)


# ----------------------------------------------------------------------------- what cannot be read


_EXAMPLE_NAMES = (
    "{stem}_example.py",
    "{stem}.example.py",
    "{stem}_sample.py",
    "example_{stem}.py",
    "{stem}.py.example",
    "{stem}.py.sample",
)


def settings_gaps(
    read: SettingsRead, repo: RepoFiles, resolver: ModuleResolver
) -> list[SettingGap]:
    """The connection settings the repository cannot show, each with where it would come
    from: DATABASES (and so its aliases, engine and CONN_MAX_AGE) set by class-based settings,
    a module that is not committed or a call at run time; an engine chosen by an `if` that
    cannot be decided; a CONN_MAX_AGE read from a variable set nowhere. Never a default."""
    gaps: list[SettingGap] = []
    default = read.databases().get("default")
    if default is None:
        source, evidence = _databases_source(read, repo, resolver)
        gaps.append(
            SettingGap("DATABASES", f"the aliases, their host and role: {source}", evidence)
        )
        gaps.append(SettingGap("ENGINE", source, evidence))
        gaps.append(
            SettingGap(
                "CONN_MAX_AGE",
                f"{source}; taken as persistent (the worse case) until known",
                evidence,
            )
        )
        return gaps
    for path, line, test, engines_differ in read.evaluation.undecided:
        where = Evidence(path, line, repo.quote(path, line), Resolution.LITERAL)
        setting = "ENGINE" if engines_differ else "DATABASES"
        gaps.append(
            SettingGap(
                setting,
                f"`if {test}` ({path}:{line}) cannot be decided from the files and its branches set "
                f"DATABASES differently; the audit read one branch",
                (where,),
            )
        )
    options = field(default.value, "OPTIONS")
    pool = (
        options.value.get("pool")
        if options is not None and isinstance(options.value, dict)
        else None
    )
    high = (
        pool.value.get("max_size") if isinstance(pool, V) and isinstance(pool.value, dict) else None
    )
    if isinstance(high, V) and not isinstance(high.value, int):
        source = (
            f"the variable {high.env_var}, set in no file read"
            if high.env_var
            else "a value computed at run time"
        )
        gaps.append(
            SettingGap(
                "POOL_MAX_SIZE",
                f"OPTIONS['pool']['max_size'] comes from {source}; each process is taken at its "
                "own concurrency (the worse case) until known",
                high.evidence[:2],
            )
        )
    cma = field(default.value, "CONN_MAX_AGE")
    if settings_score(read.choice.module) < 0:
        # Only development settings are named in the repository: production's module (and its
        # CONN_MAX_AGE) is set where the repository cannot show it (the platform's environment).
        others = sorted(
            {
                p
                for p in repo.paths
                if p.endswith(".py")
                and p.rsplit("/", 1)[0] == read.choice.path.rsplit("/", 1)[0]
                and p != read.choice.path
                and not p.endswith("__init__.py")
            }
        )
        hint = f"; candidates beside it: {', '.join(others[:4])}" if others else ""
        gaps.append(
            SettingGap(
                "CONN_MAX_AGE",
                f"the settings read ({read.choice.module}, {read.choice.reason}) are development "
                f"settings; production's DJANGO_SETTINGS_MODULE is set outside the repository{hint}; "
                "taken as persistent (the worse case) until known",
                read.choice.evidence[:1],
            )
        )
    elif cma is not None and not cma.known:
        source = (
            f"the variable {cma.env_var}, set in no file read"
            if cma.env_var
            else "a value computed at run time"
        )
        gaps.append(
            SettingGap(
                "CONN_MAX_AGE",
                f"{source}; taken as persistent (the worse case) until known",
                cma.evidence[:2],
            )
        )
    return gaps


def _databases_source(
    read: SettingsRead, repo: RepoFiles, resolver: ModuleResolver
) -> tuple[str, tuple[Evidence, ...]]:
    """Why DATABASES has no readable `default`, and the lines that show it."""
    found: list[tuple[str, Evidence]] = []
    value = read.get("DATABASES")
    if value is not None and not isinstance(value.value, dict) and value.evidence:
        first = value.evidence[0]
        found.append((f"`{first.text[:70]}` ({first.location()}) is read at run time", first))
    for path in read.evaluation.files:
        try:
            tree, _ = parse_source(repo.text(path) or "", path)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            line = getattr(node, "lineno", None)
            here = Evidence(path, line, repo.quote(path, line), Resolution.LITERAL)
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                target = (
                    resolver.relative(path, node.level, node.module)
                    if node.level
                    else resolver.find(node.module or "", near=path)
                )
                if target is None and (node.level or _project_module(node.module or "", resolver)):
                    found.append((_missing_module(path, node, repo), here))
            elif isinstance(node, ast.ClassDef) and _defines(node, "DATABASES"):
                found.append(
                    (
                        f"class {node.name} ({path}:{node.lineno}) sets DATABASES: class-based settings "
                        "(django-configurations, a property), chosen and built at run time",
                        here,
                    )
                )
            elif (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and _fills_module(node.value)
            ):
                found.append(
                    (
                        f"`{repo.quote(path, line)[:70]}` ({path}:{line}) sets the module's settings at run time",
                        here,
                    )
                )
    if not found:
        files = ", ".join(read.evaluation.files[:3]) or read.choice.path
        return f"DATABASES is not set in {files}", (
            Evidence(read.choice.path, None, "DATABASES not set", Resolution.LITERAL),
        )
    return "; ".join(dict.fromkeys(text for text, _ in found)), tuple(
        evidence for _, evidence in found[:3]
    )


def _missing_module(path: str, node: ast.ImportFrom, repo: RepoFiles) -> str:
    written = "." * node.level + (node.module or "")
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    stem = (node.module or "").rsplit(".", 1)[-1]
    examples = [f"{folder}/{name.format(stem=stem)}".lstrip("/") for name in _EXAMPLE_NAMES]
    example = next((e for e in examples if repo.has(e)), None)
    text = f"`from {written} import *` ({path}:{node.lineno}): {written} is not in the repository"
    return text + (f" ({example} is its example, not what runs)" if example else "")


def _project_module(module: str, resolver: ModuleResolver) -> bool:
    """An absolute import of a module that would be the project's own (its package is here)."""
    top = module.split(".", 1)[0]
    return bool(top) and (
        resolver.find(top) is not None or re.search(r"settings|config|local", module) is not None
    )


def _defines(node: ast.ClassDef, name: str) -> bool:
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == name:
            return True
        targets = (
            item.targets
            if isinstance(item, ast.Assign)
            else [item.target]
            if isinstance(item, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def _fills_module(call: ast.Call) -> bool:
    """`Base.load_settings(__name__)`, `globals().update(...)`: a call that writes the module's names."""
    if (
        isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Call)
        and isinstance(call.func.value.func, ast.Name)
        and call.func.value.func.id in ("globals", "vars", "locals")
    ):
        return True
    return any(isinstance(arg, ast.Name) and arg.id == "__name__" for arg in call.args)
