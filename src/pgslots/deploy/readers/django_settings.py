"""Django settings: which module production uses, and what its DATABASES say.

The module is found the way Django finds it, from `DJANGO_SETTINGS_MODULE`: in the
environment of the process (env files, compose, start scripts, Kubernetes), else the
`os.environ.setdefault(...)` of `wsgi.py`/`asgi.py`/`manage.py`. Production wins over
local/test/dev modules, and the report says which was chosen and why.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.model import AliasFact, Quantity
from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.envfiles import Env
from pgslots.deploy.readers.pyeval import UNKNOWN, Evaluation, Evaluator, ModuleResolver, V
from pgslots.evidence import Evidence, Resolution

_SETDEFAULT = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*[,:=]\s*f?['"](?P<module>[A-Za-z_][\w.]*)['"]""")
_NON_PRODUCTION = re.compile(r"(^|[._])(local|dev|develop|development|test|tests|testing|ci|debug)([._]|$)")
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
                found.append((match["module"], Evidence(rel, number, line.strip(), Resolution.LITERAL)))
    return found


def choose_settings(repo: RepoFiles, resolver: ModuleResolver, envs: list[Env]) -> SettingsChoice | None:
    """The production settings module, from the processes' environments, then the code."""
    candidates: list[tuple[int, int, str, str, Evidence | None]] = []  # (score, source rank, module, why, ev)
    for env in envs:
        item = env.get("DJANGO_SETTINGS_MODULE")
        if item and item.value:
            candidates.append((settings_score(item.value), 2, item.value, f"DJANGO_SETTINGS_MODULE at {item.evidence.location()}", item.evidence))
    for module, evidence in declared_modules(repo):
        candidates.append((settings_score(module), 1, module, f"the default in {evidence.location()}", evidence))
    ranked = sorted(candidates, key=lambda c: (-c[0], -c[1]))
    rejected = sorted({c[2] for c in ranked if c[0] < 0})
    for score, _, module, why, evidence in ranked:
        path = resolver.find(module)
        if path is None:
            continue
        reason = why
        if rejected and score >= 0:
            reason += f"; preferred over {', '.join(rejected)} (local/test settings)"
        elif score < 0:
            reason += " (only local/test settings were found)"
        return SettingsChoice(module, path, reason, (evidence,) if evidence else ())
    # No DJANGO_SETTINGS_MODULE anywhere: look for a settings file that defines DATABASES.
    files = [p for p in repo.paths if p.endswith(".py") and re.search(r"(^|/)settings(/[^/]+)?\.py$", p)]
    files = [p for p in files if "DATABASES" in (repo.text(p) or "")]
    if not files:
        return None
    best = max(files, key=lambda p: (settings_score(p.replace("/", ".")), -p.count("/")))
    module = best[:-3].replace("/", ".")
    return SettingsChoice(module, best, f"{best}: no DJANGO_SETTINGS_MODULE found; the settings file that defines DATABASES")


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
        return {k: v for k, v in value.value.items() if isinstance(v, V) and isinstance(v.value, dict)}

    def celery(self, name: str) -> V | None:
        """A Celery setting under its Django (CELERY_ namespace) or old or app.conf names."""
        conf = self.ns.get("__celery_conf__")
        lower = name.lower()
        if conf is not None and isinstance(conf.value, dict) and lower in conf.value:
            return conf.value[lower]
        old = {"worker_concurrency": "CELERYD_CONCURRENCY", "worker_pool": "CELERYD_POOL", "beat_scheduler": "CELERYBEAT_SCHEDULER"}
        for key in (f"CELERY_{name.upper()}", old.get(lower, ""), name.upper()):
            if key and key in self.ns:
                return self.ns[key]
        return None


def read_settings(repo: RepoFiles, choice: SettingsChoice, env: Env, resolver: ModuleResolver, trees: dict) -> SettingsRead:
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
            same = _same(host, d_host) if _same(host, d_host) is not True else _same(port or "5432", d_port or "5432")
        out.append(
            AliasFact(
                name=name, engine=engine, host=host, port=port,
                database=_text(field(items, "NAME")), user=_text(field(items, "USER")),
                same_server=same, evidence=entry.evidence[:3],
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
    return True if a in local and b in local else False


def quantity_of(value: V | None, unknown: str | None = None) -> Quantity:
    if value is None:
        return Quantity(None, (), unknown)
    if value.known and isinstance(value.value, int) and not isinstance(value.value, bool):
        return Quantity(value.value, value.evidence)
    return Quantity(None, value.evidence, unknown)
