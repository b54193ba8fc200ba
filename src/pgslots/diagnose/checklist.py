""" "What we still need to verify", settled from the evidence where it exists.

The write-up left its checklist open ("settings not searched for an override", "confirm
max_connections"). Each item here is the same question, answered with the value and its
`file:line`, its server setting or its event rows when an input holds it; otherwise it
names the exact command, query or file that settles it.
"""

from __future__ import annotations

from collections.abc import Callable

from pgslots import versions
from pgslots.deploy.model import ProcessGroup, Quantity
from pgslots.diagnose.context import Joined
from pgslots.diagnose.inplace import is_asgi
from pgslots.diagnosis import VerificationItem, unknown_item
from pgslots.events.timeline import NOT_SET
from pgslots.evidence import Evidence

SETTINGS_QUERY = (
    "`SHOW max_connections; SHOW superuser_reserved_connections; SHOW reserved_connections;` "
    "(the last on PostgreSQL 16+), or `pgslots probe --dsn ...`"
)
HOLDERS_QUERY = (
    "`SELECT usename, application_name, client_addr, state, count(*) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;`"
)
IDLE_QUERY = (
    "`SELECT application_name, client_addr, count(*), max(now() - state_change) AS oldest FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND state = 'idle' GROUP BY 1, 2 ORDER BY 3 DESC;`"
)
ROLE_QUERY = "`SELECT rolname, rolsuper, rolconnlimit FROM pg_roles WHERE rolname = current_user;` (connected as the application's role)"


def _where(evidence: tuple[Evidence, ...]) -> tuple[str, ...]:
    return tuple(f"{e.location()}: {' '.join(e.text.split())[:100]}" for e in evidence[:2])


def _first(groups: list[ProcessGroup]) -> ProcessGroup | None:
    return groups[0] if groups else None


def _groups(j: Joined, kind: str) -> list[ProcessGroup]:
    return [g for g in j.topology.groups if g.kind == kind] if j.topology else []


def conn_max_age(j: Joined) -> VerificationItem:
    question = "`CONN_MAX_AGE` in the production settings?"
    web = _first(_groups(j, "web")) or (_first(list(j.topology.groups)) if j.topology else None)
    if web is None:
        return VerificationItem(
            question,
            how_to_settle="open the production settings module (e.g. "
            "`config/settings/production.py`) and search `DATABASES` and `CONN_MAX_AGE`; "
            "or give `--repo`",
            key="conn_max_age",
        )
    policy = web.policy
    value = "None (unlimited)" if policy.conn_max_age is None else str(policy.conn_max_age)
    if policy.pool_max is not None:
        value = f"a pool of {policy.pool_min}..{policy.pool_max} (CONN_MAX_AGE must then be 0)"
    if not policy.conn_max_age_evidence:
        value += " (Django's default: nothing sets it)"
    return VerificationItem(
        question, answer=value, evidence=_where(policy.conn_max_age_evidence), key="conn_max_age"
    )


def _quantity_item(
    key: str, question: str, q: Quantity | None, how: str, unit: str = ""
) -> VerificationItem:
    if q is None or q.value is None:
        assume = f" then `--assume {q.unknown}=N`" if q is not None and q.unknown else ""
        return VerificationItem(question, how_to_settle=how + assume, key=key)
    return VerificationItem(
        question, answer=f"{q.value}{unit}", evidence=_where(q.evidence), key=key
    )


def web_hosts(j: Joined) -> VerificationItem:
    web = _first(_groups(j, "web"))
    # A host attribute that is not set is not a host.
    hosts_facet = (
        [r for r in j.incident.facets.get("host", ()) if r.value != NOT_SET] if j.incident else []
    )
    how = (
        "count the hosts or replicas running the web service (`kubectl get deploy`, the orchestrator's "
        "console), or in New Relic `SELECT uniqueCount(host) FROM Transaction WHERE appName = '...' SINCE 1 day ago`"
    )
    item = _quantity_item(
        "web_hosts", "How many hosts run the web service?", web.hosts if web else None, how
    )
    if not item.settled and hosts_facet:
        return VerificationItem(
            item.question,
            answer=f"at least {len(hosts_facet)} (distinct hosts in the failing events)",
            evidence=tuple(f"host {r.value}: {r.count} events" for r in hosts_facet[:3]),
            key="web_hosts",
        )
    return item


def web_processes(j: Joined) -> VerificationItem:
    web = _first(_groups(j, "web"))
    return _quantity_item(
        "web_processes",
        "Web worker processes per host (`WEB_CONCURRENCY` / `--workers`)?",
        web.processes if web else None,
        "read the production start command and env file (`WEB_CONCURRENCY`, gunicorn `-w`/`--workers`); or give `--repo`",
    )


def web_server_model(j: Joined) -> VerificationItem:
    web = _first(_groups(j, "web"))
    question = "Web server model (WSGI sync/threads, or ASGI)?"
    if web is None:
        return VerificationItem(
            question,
            how_to_settle="read the web start command (gunicorn `-k`, uvicorn, daphne); or give `--repo`",
            key="web_server_model",
        )
    answer = web.server_model
    if is_asgi(web):
        limit = web.per_process
        answer += (
            "; no concurrency limit (in-flight requests per worker unbounded)"
            if limit.value is None
            else f"; at most {limit.value} in flight per worker"
        )
    return VerificationItem(
        question,
        answer=answer,
        evidence=_where(web.evidence) or (web.command,),
        key="web_server_model",
    )


def celery_workers(j: Joined) -> VerificationItem:
    workers = _groups(j, "worker")
    question = "Celery concurrency, pool and number of worker nodes?"
    if not workers:
        how = "read the worker start command (`celery worker -c/--concurrency`, `--pool`, `--autoscale`) and `CELERY_WORKER_CONCURRENCY`; or give `--repo`"
        return VerificationItem(question, how_to_settle=how, key="celery")
    parts: list[str] = []
    evidence: list[str] = []
    for w in workers:
        nodes = (
            w.hosts.value
            if w.hosts.value is not None
            else f"? (--assume {w.hosts.unknown})"
            if w.hosts.unknown
            else "?"
        )
        parts.append(
            f"{w.name}: {w.server_model}, {w.processes.value if w.processes.value is not None else '?'} per node x {nodes} nodes"
        )
        evidence += _where(w.processes.evidence or w.evidence)
    return VerificationItem(
        question, answer="; ".join(parts), evidence=tuple(evidence), key="celery"
    )


def server_settings(j: Joined) -> VerificationItem:
    question = "`max_connections`, `superuser_reserved_connections`, `reserved_connections` on the production server?"
    s = j.snapshot
    if s is not None and s.max_connections is not None:
        reserved = (
            f", reserved_connections {s.reserved_connections}"
            if s.reserved_connections is not None
            else ""
        )
        return VerificationItem(
            question,
            answer=f"max_connections {s.max_connections}, superuser_reserved_connections {s.superuser_reserved_connections}{reserved}",
            evidence=(f"live: {s.target} at {s.taken_at:%Y-%m-%d %H:%M} UTC",),
            key="server_settings",
        )
    how = SETTINGS_QUERY
    if j.topology is not None and j.topology.slots.max_connections.value is not None:
        how += f" (the audit assumes {j.topology.slots.max_connections.value}, from the repository or PostgreSQL's default)"
    return VerificationItem(question, how_to_settle=how, key="server_settings")


def role(j: Joined) -> VerificationItem:
    question = "Is the application's role a superuser?"
    s = j.snapshot
    if s is not None and s.role is not None and s.role.is_superuser is not None:
        return VerificationItem(
            question,
            answer="yes" if s.role.is_superuser else "no",
            evidence=(f"live: role {s.role.name} on {s.target}",),
            key="role",
        )
    pre16 = j.gathered.reserved_wordings.get("pre16", 0) + j.gathered.reserved_wordings.get(
        "16+", 0
    )
    reserved = j.incident.by_category.get("reserved_superuser", 0) if j.incident else 0
    if pre16 or reserved:
        return VerificationItem(
            question,
            answer="no: the server refused it with the reserved-for-superuser wording, which it never sends a superuser",
            evidence=(f"{reserved or pre16} events with that wording",),
            key="role",
        )
    slots = j.topology.slots if j.topology else None
    if slots is not None and slots.role:
        where = f" ({slots.role_evidence[0].location()})" if slots.role_evidence else ""
        return VerificationItem(
            question,
            how_to_settle=f"{ROLE_QUERY}; the repository connects as `{slots.role}`{where}",
            key="role",
        )
    return VerificationItem(question, how_to_settle=ROLE_QUERY, key="role")


def server_version(j: Joined) -> VerificationItem:
    question = "PostgreSQL server version?"
    s = j.snapshot
    if s is not None and s.server_version:
        return VerificationItem(
            question, answer=s.server_version, evidence=(f"live: {s.target}",), key="server_version"
        )
    log = j.incident.server_log if j.incident else None
    if log is not None and log.inferred_version:
        return VerificationItem(
            question, answer=log.inferred_version, evidence=("server log",), key="server_version"
        )
    wordings = j.gathered.reserved_wordings
    if wordings.get("pre16"):
        return VerificationItem(
            question,
            answer="15 or older (from the refusal wording)",
            evidence=(f"{wordings['pre16']} events with 'non-replication superuser connections'",),
            how_to_settle="`SELECT version();` for the exact release",
            key="server_version",
        )
    if wordings.get("16+"):
        return VerificationItem(
            question,
            answer="16 or newer (from the refusal wording)",
            evidence=(f"{wordings['16+']} events with the 16+ wording",),
            how_to_settle="`SELECT version();` for the exact release",
            key="server_version",
        )
    repo_version = j.topology.slots.server_version if j.topology else None
    if repo_version is not None and repo_version.value is not None:
        return VerificationItem(
            question,
            answer=f"{repo_version.value} in the repository (production may differ)",
            evidence=_where(repo_version.evidence),
            how_to_settle="`SELECT version();` on the production server",
            key="server_version",
        )
    return VerificationItem(question, how_to_settle="`SELECT version();`", key="server_version")


def other_holders(j: Joined) -> VerificationItem:
    question = "Who else holds connections (other apps, monitoring, superuser sessions)?"
    s = j.snapshot
    if s is not None and s.backends:
        ranked = sorted(s.backends, key=lambda b: -b.count)[:4]
        answer = "; ".join(
            f"{b.count} {b.user or '?'}/{b.application or '-'}@{b.client or 'local'} {b.state or ''}".strip()
            for b in ranked
        )
        return VerificationItem(
            question,
            answer=answer,
            evidence=(f"live: {s.target} at {s.taken_at:%H:%M} UTC",),
            how_to_settle="repeat during a burst: `pgslots watch --record FILE`",
            key="holders",
        )
    return VerificationItem(
        question,
        how_to_settle=HOLDERS_QUERY + " during a burst (or `pgslots watch --record FILE`)",
        key="holders",
    )


def idle_connections(j: Joined) -> VerificationItem:
    question = "Do idle connections pile up between bursts (the persistent-connection leak)?"
    s = j.snapshot
    idle = [b for b in s.backends if b.state == "idle"] if s is not None else []
    if s is None or not idle:
        return VerificationItem(
            question, how_to_settle=IDLE_QUERY + " a minute after a burst", key="idle"
        )
    oldest = max((b.max_idle_seconds or 0) for b in idle)
    count = sum(b.count for b in idle)
    return VerificationItem(
        question,
        answer=f"{count} idle client backends, the oldest idle for {oldest:.0f} s",
        evidence=(f"live: {s.target} at {s.taken_at:%H:%M} UTC",),
        key="idle",
    )


def _version_item(j: Joined, key: str, package: str, question: str, how: str) -> VerificationItem:
    names = (
        (package, "psycopg-binary", "psycopg2-binary", "psycopg2")
        if package == "psycopg"
        else (package,)
    )
    found = versions.find(j.topology.versions, *names) if j.topology is not None else None
    if found is None:
        return VerificationItem(question, how_to_settle=how, key=key)
    return VerificationItem(
        question,
        answer=versions.written(found),
        evidence=(found.evidence.location(),),
        key=key,
        how_to_settle="confirm the version installed in the production image: " + how,
    )


def django_version(j: Joined) -> VerificationItem:
    return _version_item(
        j,
        "django",
        "django",
        "Django version (ASGI thread-per-request from 4.0; 5.0.0/5.0.1 leak even at 0)?",
        "`pip show django` in the production image",
    )


def psycopg_version(j: Joined) -> VerificationItem:
    return _version_item(
        j,
        "psycopg",
        "psycopg",
        "psycopg version (how refusals are worded and retried)?",
        "`pip show psycopg psycopg2` in the production image",
    )


def peak_backends(j: Joined) -> VerificationItem:
    question = "How many client backends were open at the peak?"
    cap = j.capacity
    if cap is not None and cap.observed_peak is not None:
        return VerificationItem(
            question, answer=str(cap.observed_peak), evidence=(cap.observed_basis,), key="peak"
        )
    return VerificationItem(
        question,
        how_to_settle="turn on `log_connections` and `log_disconnections` and pass the server log to `--events`, "
        "or run `pgslots watch --dsn ... --record FILE` through the next burst and pass it to `--watch-record`",
        key="peak",
    )


def first_query(j: Joined) -> VerificationItem | None:
    before = sum(a.before_view for a in j.attribution)
    if not before:
        return None
    question = f"What opens the first connection before the view ({before} events)?"
    web = _first(_groups(j, "web"))
    django = j.topology.django if j.topology else None
    if web is None or django is None:
        return VerificationItem(
            question,
            how_to_settle="search the settings for `ATOMIC_REQUESTS`, `CSRF_USE_SESSIONS`, `LoginRequiredMiddleware` and "
            "custom `MIDDLEWARE` reading `request.user` (`grep -rnE 'ATOMIC_REQUESTS|CSRF_USE_SESSIONS|MIDDLEWARE' "
            "config/settings/`)",
            key="first_query",
        )
    causes = []
    if web.policy.atomic_requests:
        causes.append(
            "ATOMIC_REQUESTS is on: the per-view transaction opens the connection just before the view"
        )
    if django.csrf_use_sessions:
        causes.append(
            "CSRF_USE_SESSIONS is on: CsrfViewMiddleware loads the session from the database"
        )
    if django.login_required_middleware:
        causes.append("LoginRequiredMiddleware reads request.user")
    answer = "; ".join(causes) or (
        "none of ATOMIC_REQUESTS, CSRF_USE_SESSIONS or LoginRequiredMiddleware is set: a custom middleware reading "
        "request.user or the session, or the view's own first query"
    )
    return VerificationItem(
        question,
        answer=answer,
        evidence=_where(django.evidence),
        key="first_query",
        how_to_settle=None if causes else "read the custom entries of `MIDDLEWARE`",
    )


def ssl_retry(j: Joined) -> VerificationItem | None:
    combined = sum(
        n for k, n in (j.incident.by_combination.items() if j.incident else ()) if "+" in k
    )
    if not combined:
        return None
    return VerificationItem(
        f"Why do {combined} messages carry two refusals (SSL retry or several addresses)?",
        how_to_settle="`SELECT ssl, count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE backend_type = "
        "'client backend' GROUP BY 1;` and the `sslmode` in `DATABASE_URL` / `OPTIONS` (prefer retries without SSL); "
        "`getent ahosts <db host>` for the addresses",
        key="double_refusal",
    )


ITEMS: tuple[Callable[[Joined], VerificationItem | None], ...] = (
    conn_max_age,
    web_server_model,
    web_hosts,
    web_processes,
    celery_workers,
    server_settings,
    role,
    server_version,
    other_holders,
    idle_connections,
    peak_backends,
    django_version,
    psycopg_version,
    first_query,
    ssl_retry,
)


def _other_unknowns(j: Joined, items: list[VerificationItem]) -> list[VerificationItem]:
    """The audit's remaining unknown counts (other groups' hosts, CPUs...), each settable
    with --assume, unless an item above already asks for it. Server settings are asked above."""
    if j.topology is None:
        return []
    said = " ".join(f"{i.how_to_settle or ''} {' '.join(i.evidence)}" for i in items)
    return [
        unknown_item(u)
        for u in j.topology.unknowns
        if u.assumed is None
        and not u.name.startswith("server.")
        and f"--assume {u.name}" not in said
    ]


def checklist(j: Joined) -> tuple[VerificationItem, ...]:
    items = [item for make in ITEMS if (item := make(j)) is not None]
    return tuple(items + _other_unknowns(j, items))
