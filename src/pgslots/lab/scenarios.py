"""The lab's scenarios: the incident's deployment shape (`baseline`) and one scenario per
remedy, each changing as little as the remedy needs, all under the same load.

Sizes fit the lab machine (2 cores): the write-up's shape scaled down, as in the
reproduction of domain reference §3.4b (PostgreSQL with `max_connections=20`,
`superuser_reserved_connections=3`, a non-superuser app role, two ASGI workers with
`CONN_MAX_AGE=60` and `ATOMIC_REQUESTS=True`, Celery prefork with 4 children, an
open-loop burst that grows). `scaled(s)` multiplies every size and rate together.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from pgslots import remedies
from pgslots.remedy import RemedySpec

ServerKind = Literal["asgi-gunicorn", "asgi-uvicorn", "gthread", "sync"]

SERVER_LABELS: dict[str, str] = {
    "asgi-gunicorn": "gunicorn -k uvicorn_worker.UvicornWorker (ASGI)",
    "asgi-uvicorn": "uvicorn --workers (ASGI)",
    "gthread": "gunicorn -k gthread (WSGI)",
    "sync": "gunicorn -k sync (WSGI)",
}


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stretch of the load at constant arrival rates (per second)."""

    seconds: float
    web_rate: float
    task_rate: float


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    """Open-loop arrivals stage by stage (web requests Poisson and seeded, Celery tasks in
    periodic batches of `task_batch`), then a quiet tail during which the sampler keeps
    watching what the app still holds. At most `max_in_flight` requests are outstanding:
    arrivals beyond that are counted as dropped by the driver, never queued (queueing
    would turn the open loop into a closed one)."""

    stages: tuple[Stage, ...]
    tail_seconds: float = 8.0
    task_batch: int = 4
    max_in_flight: int = 400
    request_timeout: float = 30.0
    seed: int = 5

    @property
    def load_seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)


DEFAULT_LOAD = LoadPlan(
    # A burst that grows, like the incident's 4 -> 152 -> 284 errors per 5 minutes: each
    # stage triples the web arrival rate of the one before. Doubling was not enough: the
    # leaked connections are closed whenever a process's garbage collector happens to run,
    # which frees a varying number of slots per bucket, and with doubling the error curve
    # came out flat in about one run in three.
    # Tasks come in batches of 4, one per Celery child, at 1 batch per second at the peak.
    # Between batches the web app fills every slot its role may use; each batch then puts
    # the superuser worker's connections into the reserved slots, and for the half second
    # a task lasts, the web app's next attempts find no slot at all ("too many clients").
    # Spread evenly (Poisson) the tasks kept about 2 children busy all the time, which held
    # the web app below its limit, and that family was missing from some runs.
    stages=(
        Stage(seconds=5.0, web_rate=1.0, task_rate=1.0),
        Stage(seconds=5.0, web_rate=3.0, task_rate=2.0),
        Stage(seconds=5.0, web_rate=9.0, task_rate=3.0),
        Stage(seconds=5.0, web_rate=27.0, task_rate=4.0),
    ),
    tail_seconds=5.0,
)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One deployment shape. `max_connections` is the server setting the deployment under
    test has; the lab adds one slot on top for its own sampler (see `sampler.py`)."""

    name: str
    title: str
    change: str  # what differs from baseline, in the user's terms
    server: ServerKind = "asgi-gunicorn"
    web_processes: int = 2
    threads: int = 1  # gthread only
    limit_concurrency: int | None = None  # uvicorn --limit-concurrency, per process
    conn_max_age: int | None = 60
    web_pool: dict[str, Any] | None = None  # Django OPTIONS["pool"] for the web processes
    worker_pool: dict[str, Any] | None = None
    pgbouncer_pool_size: int | None = None  # None: no pgbouncer
    celery_concurrency: int = 4
    max_connections: int = 20
    superuser_reserved_connections: int = 3
    reserved_connections: int = 0  # PG16+ only
    # The Celery worker connects as a superuser role (as when the worker host's env holds
    # the database owner's credentials, e.g. the postgres image's POSTGRES_USER). Its
    # connections may use the reserved slots the web app's role cannot; when they do,
    # the app's next attempt finds no free slot at all: "sorry, too many clients already".
    worker_superuser: bool = True
    query_seconds: float = 0.3
    task_seconds: float = 0.5
    requires: tuple[str, ...] = ()  # optional parts: "pgbouncer"
    remedy: RemedySpec | None = None  # the catalogue remedy this scenario measures; None: baseline

    @property
    def usable_slots(self) -> int:
        """What the app role may hold (domain reference §1.2), before anyone else connects."""
        return (
            self.max_connections - self.superuser_reserved_connections - self.reserved_connections
        )

    @property
    def cap(self) -> int | None:
        """The most server connections this shape can hold at once, when it is bounded at all
        (domain reference §7.1); None for ASGI without a cap (unbounded)."""
        if self.pgbouncer_pool_size is not None:
            # one pool per (database, user): the web role's, and the worker's when it differs
            worker = (
                min(self.pgbouncer_pool_size, self.celery_concurrency)
                if self.worker_superuser
                else 0
            )
            return self.pgbouncer_pool_size + worker
        if self.web_pool:
            web = self.web_processes * int(self.web_pool["max_size"])
        elif self.server == "gthread":
            web = self.web_processes * self.threads
        elif self.server == "sync":
            web = self.web_processes
        elif self.limit_concurrency and self.conn_max_age == 0:
            web = self.web_processes * self.limit_concurrency
        else:
            return None
        worker = self.celery_concurrency * (
            int(self.worker_pool["max_size"]) if self.worker_pool else 1
        )
        return web + worker

    def scaled(self, factor: float) -> Scenario:
        """Counts of processes and slots follow `factor`; per-process sizes (pool max_size,
        threads, --limit-concurrency) stay, so every remedy still fits its budget."""
        if factor == 1:
            return self

        def n(value: int) -> int:
            return max(1, math.floor(value * factor + 0.5))

        return dataclasses.replace(
            self,
            web_processes=n(self.web_processes),
            pgbouncer_pool_size=n(self.pgbouncer_pool_size) if self.pgbouncer_pool_size else None,
            celery_concurrency=n(self.celery_concurrency),
            max_connections=max(n(self.max_connections), self.superuser_reserved_connections + 2),
        )


def scaled_load(plan: LoadPlan, factor: float, *, duration: float = 1.0) -> LoadPlan:
    """Rates follow `factor` (more processes and slots need more traffic to exhaust);
    `duration` stretches or shrinks every stage and the tail. Stages stay whole seconds:
    the error curve is bucketed by stage, and `pgslots events` buckets are whole seconds."""
    return dataclasses.replace(
        plan,
        stages=tuple(
            Stage(
                max(1.0, float(round(s.seconds * duration))),
                s.web_rate * factor,
                s.task_rate * factor,
            )
            for s in plan.stages
        ),
        tail_seconds=plan.tail_seconds * duration,
        max_in_flight=max(50, int(plan.max_in_flight * factor)),
        task_batch=max(1, math.floor(plan.task_batch * factor + 0.5)),  # one per Celery child
    )


BASELINE = Scenario(
    name="baseline",
    title="The incident's shape",
    change="ASGI (gunicorn + uvicorn worker), CONN_MAX_AGE=60, ATOMIC_REQUESTS, Celery prefork, "
    "non-superuser role",
)

# Budget arithmetic for the remedies (defaults): usable = 20 - 3 = 17 app slots.
_POOL_WEB = {"min_size": 1, "max_size": 5, "timeout": 10}
_POOL_WORKER = {"min_size": 1, "max_size": 1, "timeout": 10}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        BASELINE,
        dataclasses.replace(
            BASELINE,
            name="conn-max-age-0",
            remedy=remedies.CONN_MAX_AGE_ZERO,
            title="Persistent connections off",
            change="CONN_MAX_AGE=0 (close at the end of each request)",
            conn_max_age=0,
        ),
        dataclasses.replace(
            BASELINE,
            name="django-pool",
            remedy=remedies.DJANGO_POOL,
            title="Django's psycopg pool, sized to the budget",
            change="OPTIONS['pool'] max_size=5 per web process, 1 per Celery child "
            "(2x5 + 4x1 = 14 <= 17 usable); CONN_MAX_AGE=0 (required with a pool)",
            conn_max_age=0,
            web_pool=_POOL_WEB,
            worker_pool=_POOL_WORKER,
        ),
        dataclasses.replace(
            BASELINE,
            name="pgbouncer",
            remedy=remedies.PGBOUNCER_TRANSACTION,
            title="pgbouncer, transaction pooling",
            change="pgbouncer pool_mode=transaction default_pool_size=10; Django CONN_MAX_AGE=0, "
            "DISABLE_SERVER_SIDE_CURSORS=True",
            conn_max_age=0,
            pgbouncer_pool_size=10,
            requires=("pgbouncer",),
        ),
        dataclasses.replace(
            BASELINE,
            name="limit-concurrency",
            remedy=remedies.LIMIT_ASGI,
            title="Bounded ASGI concurrency",
            change="uvicorn --workers 2 --limit-concurrency 5 (503 beyond it), CONN_MAX_AGE=0",
            server="asgi-uvicorn",
            limit_concurrency=5,
            conn_max_age=0,
        ),
        dataclasses.replace(
            BASELINE,
            name="wsgi-gthread",
            remedy=remedies.WSGI_THREADS,
            title="WSGI with threads",
            change="gunicorn -k gthread --workers 2 --threads 4 (WSGI), CONN_MAX_AGE=60 kept",
            server="gthread",
            threads=4,
        ),
        dataclasses.replace(
            BASELINE,
            name="fewer-workers",
            remedy=remedies.LOWER_CONCURRENCY,
            title="Fewer web workers (the write-up's bandage)",
            change="1 ASGI worker instead of 2, everything else as baseline",
            web_processes=1,
        ),
    )
}

DEMO_SCENARIOS = ("baseline", "conn-max-age-0", "django-pool", "pgbouncer")


def resolve(names: str) -> list[Scenario]:
    """`all`, one name, or a comma-separated list, in catalogue order for `all`."""
    if names == "all":
        return list(SCENARIOS.values())
    chosen = []
    for name in (part.strip() for part in names.split(",")):
        if name not in SCENARIOS:
            raise KeyError(name)
        chosen.append(SCENARIOS[name])
    return chosen
