"""Settings policy: what the evaluated Django settings say about connections.

The settings module is chosen once from every process's environment; it is evaluated once
per distinct environment (`SettingsReader`), and each evaluation gives the connection policy
of the `default` alias (CONN_MAX_AGE, pool, health checks), the aliases, and the project-wide
facts (sessions, Celery settings) that the findings use.
"""

from __future__ import annotations

from pgslots.deploy.model import AliasFact, ConnectionPolicy, DjangoFacts, Quantity, SettingGap
from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.django_settings import (
    SettingsChoice,
    SettingsRead,
    alias_facts,
    choose_settings,
    read_settings,
    settings_gaps,
    settings_score,
)
from pgslots.deploy.readers.envfiles import Env
from pgslots.deploy.readers.pyeval import ModuleResolver, V
from pgslots.evidence import Evidence, Resolution


class SettingsReader:
    """The settings module chosen from the processes' environments, evaluated once per
    distinct environment (parsed modules are shared between evaluations)."""

    def __init__(
        self,
        repo: RepoFiles,
        resolver: ModuleResolver,
        envs: list[Env],
        shipped: tuple[str, ...] = (),
    ) -> None:
        self.repo = repo
        self.resolver = resolver
        self.choice: SettingsChoice | None = choose_settings(repo, resolver, envs, shipped)
        self._reads: dict[tuple, SettingsRead] = {}
        self._trees: dict = {}
        # DJANGO_SETTINGS_MODULE values the processes are given, for when none is in the repository
        self.named = [
            item
            for env in envs
            for item in [env.get("DJANGO_SETTINGS_MODULE")]
            if item is not None and item.value
        ]

    def gaps(self, read: SettingsRead | None) -> tuple[SettingGap, ...]:
        """The connection settings this evaluation cannot show (see `settings_gaps`); with no
        settings module in the repository at all, DATABASES, the engine and CONN_MAX_AGE."""
        if read is not None:
            return tuple(settings_gaps(read, self.repo, self.resolver))
        if self.choice is not None:
            return ()
        named = self.named[0] if self.named else None
        source = (
            (
                f"DJANGO_SETTINGS_MODULE={named.value} ({named.evidence.location()}) names a module that is not in the "
                "repository (in the image, a submodule or another repository)"
            )
            if named
            else "no Django settings module is in the repository"
        )
        evidence = (named.evidence,) if named else ()
        return (
            SettingGap("DATABASES", f"the aliases, their host and role: {source}", evidence),
            SettingGap("ENGINE", source, evidence),
            SettingGap(
                "CONN_MAX_AGE",
                f"{source}; taken as persistent (the worse case) until known",
                evidence,
            ),
        )

    def read(self, env: Env, own: bool = False) -> SettingsRead | None:
        """The settings as a process with `env` sees them. With `own`, a process whose
        environment names another settings module of the repository (a Lambda function's
        DJANGO_SETTINGS_MODULE) reads that one instead of the deployment's."""
        choice = self.choice
        named = env.get("DJANGO_SETTINGS_MODULE") if own else None
        if named is not None and named.value and (choice is None or named.value != choice.module):
            mine = choose_settings(self.repo, self.resolver, [env])
            choice = mine if mine is not None and mine.module == named.value else choice
        if choice is None:
            return None
        key = (choice.module, env.key())
        if key not in self._reads:
            self._reads[key] = read_settings(self.repo, choice, env, self.resolver, self._trees)
        return self._reads[key]


def policy_from(read: SettingsRead | None) -> tuple[ConnectionPolicy, list[AliasFact]]:
    """The connection policy of the `default` alias, and every alias, in one evaluation."""
    if read is None:
        return ConnectionPolicy(conn_max_age_known=False), []
    databases = read.databases()
    default = databases.get("default")
    aliases = alias_facts(read)
    if default is None:
        return ConnectionPolicy(conn_max_age_known=False), aliases
    entry = default.value

    def get(key: str) -> V | None:
        value = entry.get(key)
        return value if isinstance(value, V) else None

    cma = get("CONN_MAX_AGE")
    conn_max_age: int | None
    cma_ev: tuple[Evidence, ...]
    if cma is None:
        conn_max_age, known, cma_ev, cma_env = (
            0,
            True,
            (
                Evidence(
                    read.choice.path,
                    None,
                    "CONN_MAX_AGE not set",
                    Resolution.LIBRARY_DEFAULT,
                    "Django's default CONN_MAX_AGE=0",
                ),
            ),
            None,
        )
    elif cma.known and (cma.value is None or isinstance(cma.value, int)):
        conn_max_age, known, cma_ev, cma_env = cma.value, True, cma.evidence, cma.env_var
    else:
        conn_max_age, known, cma_ev, cma_env = 0, False, cma.evidence, cma.env_var
    if settings_score(read.choice.module) < 0:
        known = False  # development settings: production's CONN_MAX_AGE is not in the repository (settings_gaps)
    health = get("CONN_HEALTH_CHECKS")
    options = get("OPTIONS")
    pool_min = pool_max = None
    pool_max_known = True
    pool_ev: tuple[Evidence, ...] = ()
    if (
        options is not None
        and isinstance(options.value, dict)
        and isinstance(options.value.get("pool"), V)
    ):
        pool = options.value["pool"]
        pool_ev = pool.evidence
        if pool.value is True:
            pool_min = pool_max = 4
        elif isinstance(pool.value, dict):
            low = pool.value.get("min_size")
            high = pool.value.get("max_size")
            pool_min = low.value if isinstance(low, V) and isinstance(low.value, int) else 4
            pool_max = (
                high.value if isinstance(high, V) and isinstance(high.value, int) else pool_min
            )  # psycopg_pool: max_size defaults to min_size
            pool_max_known = not (isinstance(high, V) and not isinstance(high.value, int))
    dssc = get("DISABLE_SERVER_SIDE_CURSORS")
    atomic = get("ATOMIC_REQUESTS")
    policy = ConnectionPolicy(
        conn_max_age=conn_max_age,
        conn_max_age_evidence=tuple(cma_ev),
        health_checks=bool(health and health.value is True),
        pool_min=pool_min,
        pool_max=pool_max,
        pool_max_known=pool_max_known,
        pool_evidence=pool_ev,
        health_checks_evidence=health.evidence if health else (),
        disable_server_side_cursors=bool(dssc and dssc.value is True),
        atomic_requests=bool(atomic and atomic.value is True),
        conn_max_age_known=known,
        conn_max_age_env=cma_env,
    )
    return policy, aliases


def django_facts(
    read: SettingsRead | None, choice: SettingsChoice | None, aliases: list[AliasFact]
) -> DjangoFacts:
    if read is None:
        return DjangoFacts(
            settings_module=choice.module if choice else None,
            choice=choice.reason if choice else "",
        )

    def value(name: str):
        v = read.get(name)
        return v.value if v is not None and v.known else None

    middleware = value("MIDDLEWARE") or []
    names = (
        [m.value for m in middleware if isinstance(m, V) and isinstance(m.value, str)]
        if isinstance(middleware, list)
        else []
    )
    evidence: list[Evidence] = []
    for name in ("CSRF_USE_SESSIONS", "SESSION_ENGINE"):
        v = read.get(name)
        if v is not None:
            evidence.extend(v.evidence[:1])
    concurrency = read.celery("worker_concurrency")
    pool = read.celery("worker_pool")
    scheduler = read.celery("beat_scheduler")
    backend = read.celery("result_backend")
    return DjangoFacts(
        settings_module=choice.module if choice else None,
        settings_files=tuple(read.evaluation.files),
        aliases=tuple(aliases),
        csrf_use_sessions=value("CSRF_USE_SESSIONS") is True,
        session_engine=value("SESSION_ENGINE")
        if isinstance(value("SESSION_ENGINE"), str)
        else None,
        login_required_middleware=any(n.endswith("LoginRequiredMiddleware") for n in names),
        celery_concurrency=Quantity(concurrency.value, concurrency.evidence)
        if concurrency is not None and isinstance(concurrency.value, int)
        else None,
        celery_pool=pool.value if pool is not None and isinstance(pool.value, str) else None,
        celery_beat_scheduler=scheduler.value
        if scheduler is not None and isinstance(scheduler.value, str)
        else None,
        celery_result_backend=backend.value
        if backend is not None
        and isinstance(backend.value, str)
        and not backend.value.startswith(("redis://", "amqp://"))
        else (None if backend is None or not backend.known else "(a URL)"),
        evidence=tuple(evidence),
        choice=choice.reason if choice else "",
    )
