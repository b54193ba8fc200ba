"""Findings from a live `Snapshot` (codes PGS200-299): the server and pgbouncer as they are now.

One small function per concern; `check_snapshot` runs them all. Every message carries the
numbers it rests on and the formula behind them, as read by `pgslots probe`.
"""

from __future__ import annotations

from collections.abc import Callable

from pgslots.evidence import Evidence, Resolution
from pgslots.findings import Finding, Severity, define
from pgslots.live.model import Snapshot

AREA = "live"

SERVER_FULL = define(
    "PGS200",
    "The server refused the probe: no slot left for its role",
    Severity.ERROR,
    "The server is full for this role now. Connect as a role that may still get in (see the message), "
    "or read the pooler with --pgbouncer; then find who holds the slots.",
    area=AREA,
)
LOW_HEADROOM = define(
    "PGS201",
    "Few connection slots left for the application role",
    Severity.WARNING,
    "Free slots or lower demand: pool connections (pgbouncer, Django's pool), close idle ones "
    "(CONN_MAX_AGE, idle_session_timeout), or raise max_connections.",
    area=AREA,
)
HIDDEN = define(
    "PGS202",
    "Some details were hidden for lack of privilege",
    Severity.INFO,
    "Probe as a role with pg_monitor (GRANT pg_monitor TO <role>); no superuser is needed.",
    area=AREA,
)
IDLE_IN_TRANSACTION = define(
    "PGS203",
    "Sessions idle in transaction hold slots",
    Severity.WARNING,
    "Find the code that opens a transaction and waits (ATOMIC_REQUESTS around slow I/O, a shell left open); "
    "set idle_in_transaction_session_timeout.",
    area=AREA,
)
IDLE_HOLDERS = define(
    "PGS204",
    "Idle connections hold a large share of the slots",
    Severity.INFO,
    "Persistent connections kept idle (CONN_MAX_AGE > 0, leaked under ASGI) cost slots: use a pool "
    "or pgbouncer, or close them (CONN_MAX_AGE=0, idle_session_timeout).",
    area=AREA,
)
ROLE_LIMIT = define(
    "PGS205",
    "A role is at or near its CONNECTION LIMIT",
    Severity.WARNING,
    "ALTER ROLE ... CONNECTION LIMIT n, or lower the role's demand; superusers are exempt.",
    area=AREA,
)
DATABASE_LIMIT = define(
    "PGS206",
    "A database is at or near its CONNECTION LIMIT",
    Severity.WARNING,
    "ALTER DATABASE ... CONNECTION LIMIT n, or lower the demand on it; superusers are exempt.",
    area=AREA,
)
APP_IS_SUPERUSER = define(
    "PGS207",
    "The application role is a superuser",
    Severity.WARNING,
    "Run the application as an ordinary role: the reserved slots then keep a way in for admins "
    "during an exhaustion.",
    area=AREA,
)
PGBOUNCER_WAITING = define(
    "PGS208",
    "pgbouncer clients are waiting for a server connection",
    Severity.WARNING,
    "The pool is too small for the demand, or transactions are slow: check pool_size per (database, user), "
    "long transactions, and query_wait_timeout.",
    area=AREA,
)
PGBOUNCER_OVERCOMMIT = define(
    "PGS209",
    "pgbouncer's pool sizes add up to more than the server's usable slots",
    Severity.ERROR,
    "Pool sizes apply per (database, user) pair: lower default_pool_size or set max_db_connections / "
    "max_user_connections so that the sum fits the server's usable slots.",
    area=AREA,
)
OVER_TOPOLOGY = define(
    "PGS210",
    "A process group holds more connections than the topology expects",
    Severity.WARNING,
    "The audit's demand model misses something for this group (threads, ASGI in-flight requests, a leak), "
    "or an assumption (--assume) is wrong.",
    area=AREA,
)
UNEXPECTED = define(
    "PGS211",
    "Application-role connections that no topology group explains",
    Severity.INFO,
    "Set application_name per process group (Django OPTIONS, PGAPPNAME) so connections can be attributed.",
    area=AREA,
)
OTHER_HOLDERS = define(
    "PGS212",
    "Other roles hold slots the application counts on",
    Severity.INFO,
    "Superuser sessions, monitoring, migrations and other services take ordinary slots too: count them "
    "in the budget, or give them their own limits.",
    area=AREA,
)

IDLE_IN_TRANSACTION_SECONDS = 30.0
IDLE_SHARE = 0.25
NEAR_LIMIT = 0.8


def _evidence(snapshot: Snapshot, *texts: str) -> tuple[Evidence, ...]:
    return tuple(Evidence(snapshot.target, None, text, Resolution.LIVE) for text in texts if text)


def server_full(snapshot: Snapshot, **_: object) -> list[Finding]:
    refusal = snapshot.refused
    if refusal is None:
        return []
    return [
        SERVER_FULL.finding(
            f"The server refused the probe ({refusal.category}): {refusal.message}. "
            f"Who could still connect: {refusal.who_could_connect}.",
            evidence=_evidence(snapshot, refusal.message),
        )
    ]


def low_headroom(snapshot: Snapshot, warn_fraction: float = 0.2, **_: object) -> list[Finding]:
    if snapshot.role is None or not snapshot.headroom_below(warn_fraction):
        return []
    room, usable = snapshot.headroom_for_role or 0, snapshot.usable_for_role or 0
    severity = Severity.ERROR if room == 0 else Severity.WARNING
    return [
        LOW_HEADROOM.finding(
            f"Role {snapshot.role.name} can open {room} more connection(s) of {usable} usable "
            f"({room / usable:.0%}, under the {warn_fraction:.0%} warning line; limited by {snapshot.headroom_limited_by}).",
            evidence=_evidence(snapshot, snapshot.usable_formula, snapshot.headroom_formula),
            severity=severity,
        )
    ]


def hidden_details(snapshot: Snapshot, **_: object) -> list[Finding]:
    if not snapshot.hidden:
        return []
    return [
        HIDDEN.finding(
            "; ".join(snapshot.hidden) + ".", evidence=_evidence(snapshot, *snapshot.hidden)
        )
    ]


def idle_in_transaction(snapshot: Snapshot, **_: object) -> list[Finding]:
    groups = [
        b
        for b in snapshot.backends
        if (b.max_idle_in_transaction_seconds or 0) >= IDLE_IN_TRANSACTION_SECONDS
    ]
    if not groups:
        return []
    count = sum(b.count for b in groups)
    oldest = max(b.max_idle_in_transaction_seconds or 0 for b in groups)
    who = ", ".join(
        sorted({f"{b.user}/{b.application or '(no application_name)'}" for b in groups})
    )
    return [
        IDLE_IN_TRANSACTION.finding(
            f"{count} session(s) idle in transaction for {IDLE_IN_TRANSACTION_SECONDS:.0f} s or more "
            f"(oldest {oldest:.0f} s): {who}.",
            evidence=_evidence(
                snapshot,
                *(
                    f"{b.count} x {b.user}@{b.database} application_name={b.application!r} "
                    f"state={b.state} idle {b.max_idle_in_transaction_seconds:.0f} s"
                    for b in groups
                ),
            ),
        )
    ]


def idle_holders(snapshot: Snapshot, **_: object) -> list[Finding]:
    if not snapshot.usable_for_role:
        return []
    idle = [b for b in snapshot.backends if b.state == "idle"]
    count = sum(b.count for b in idle)
    if count < snapshot.usable_for_role * IDLE_SHARE or count == 0:
        return []
    oldest = max((b.max_idle_seconds or 0) for b in idle)
    return [
        IDLE_HOLDERS.finding(
            f"{count} idle connection(s) hold {count / snapshot.usable_for_role:.0%} of the "
            f"{snapshot.usable_for_role} usable slots (longest idle {oldest:.0f} s).",
            evidence=_evidence(
                snapshot,
                *(
                    f"{b.count} x {b.user}/{b.application or '(none)'} idle, longest "
                    f"{b.max_idle_seconds or 0:.0f} s"
                    for b in idle[:5]
                ),
            ),
        )
    ]


def _near(limit: int, held: int) -> Severity | None:
    if held >= limit:
        return Severity.ERROR
    if held >= limit * NEAR_LIMIT:
        return Severity.WARNING
    return None


def role_limits(snapshot: Snapshot, **_: object) -> list[Finding]:
    findings = []
    for role in snapshot.roles:
        if role.connection_limit is None or role.connections is None or role.is_superuser:
            continue
        severity = _near(role.connection_limit, role.connections)
        if severity:
            findings.append(
                ROLE_LIMIT.finding(
                    f"Role {role.name} holds {role.connections} of its CONNECTION LIMIT {role.connection_limit}.",
                    evidence=_evidence(
                        snapshot, f"pg_roles.rolconnlimit = {role.connection_limit} for {role.name}"
                    ),
                    severity=severity,
                )
            )
    return findings


def database_limits(snapshot: Snapshot, **_: object) -> list[Finding]:
    findings = []
    for database in snapshot.database_limits:
        if database.connection_limit is None or database.connections is None:
            continue
        severity = _near(database.connection_limit, database.connections)
        if severity:
            findings.append(
                DATABASE_LIMIT.finding(
                    f"Database {database.name} has {database.connections} connection(s) of its CONNECTION LIMIT "
                    f"{database.connection_limit}.",
                    evidence=_evidence(
                        snapshot,
                        f"pg_database.datconnlimit = {database.connection_limit} "
                        f"for {database.name}",
                    ),
                    severity=severity,
                )
            )
    return findings


def app_is_superuser(snapshot: Snapshot, **_: object) -> list[Finding]:
    if (
        snapshot.role is None
        or not snapshot.role.is_superuser
        or snapshot.role.name != snapshot.probe_user
    ):
        return []
    return [
        APP_IS_SUPERUSER.finding(
            f"Usable slots were computed for role {snapshot.role.name}, a superuser: it may fill every slot, "
            "reserved ones included, and nobody can get in once it does. If the application uses another "
            "role, pass it with --app-role.",
            evidence=_evidence(snapshot, f"pg_roles.rolsuper = true for {snapshot.role.name}"),
        )
    ]


def pgbouncer_waiting(snapshot: Snapshot, **_: object) -> list[Finding]:
    state = snapshot.pgbouncer
    if state is None or state.clients_waiting == 0:
        return []
    pools = [p for p in state.pools if p.cl_waiting]
    return [
        PGBOUNCER_WAITING.finding(
            f"{state.clients_waiting} client(s) wait for a server connection; the oldest has waited "
            f"{state.maxwait_seconds:.1f} s.",
            evidence=tuple(
                Evidence(
                    state.target,
                    None,
                    f"SHOW POOLS {p.database}/{p.user}: cl_waiting={p.cl_waiting} "
                    f"maxwait={p.maxwait_seconds:.3f} s pool_size={p.pool_size}",
                    Resolution.LIVE,
                )
                for p in pools
            ),
        )
    ]


def pgbouncer_overcommit(snapshot: Snapshot, **_: object) -> list[Finding]:
    state = snapshot.pgbouncer
    if state is None or state.server_side_capacity is None or snapshot.max_connections is None:
        return []
    ordinary = (
        snapshot.max_connections
        - (snapshot.superuser_reserved_connections or 0)
        - (snapshot.reserved_connections or 0)
    )
    limit, against = (
        (
            snapshot.usable_for_role,
            f"the {snapshot.usable_for_role} usable by role {snapshot.role.name}",
        )
        if snapshot.usable_for_role is not None and snapshot.role is not None
        else (ordinary, f"the {ordinary} ordinary slots")
    )
    if state.server_side_capacity <= limit:
        return []
    return [
        PGBOUNCER_OVERCOMMIT.finding(
            f"pgbouncer may open {state.server_side_capacity} server connections, more than {against} "
            f"(max_connections {snapshot.max_connections}).",
            evidence=(
                Evidence(state.target, None, state.server_side_capacity_formula, Resolution.LIVE),
                *_evidence(snapshot, snapshot.usable_formula),
            ),
        )
    ]


def topology_expectations(snapshot: Snapshot, **_: object) -> list[Finding]:
    findings = []
    for expectation in snapshot.expectations:
        status = expectation.status
        if status in ("over_worst", "over_steady"):
            worst = (
                "unbounded" if expectation.expected_worst is None else expectation.expected_worst
            )
            findings.append(
                OVER_TOPOLOGY.finding(
                    f"Group {expectation.group} holds {expectation.matched} connection(s); the topology expects "
                    f"{expectation.expected_steady} steady, {worst} at worst ({expectation.formula or 'no formula'}).",
                    evidence=_evidence(snapshot, expectation.rule),
                    severity=Severity.WARNING if status == "over_worst" else Severity.INFO,
                )
            )
        elif status == "unexpected":
            findings.append(
                UNEXPECTED.finding(
                    f"{expectation.matched} connection(s) of the application role fit no process group.",
                    evidence=_evidence(snapshot, expectation.rule),
                )
            )
    return findings


def other_holders(snapshot: Snapshot, **_: object) -> list[Finding]:
    if snapshot.role is None or snapshot.client_backends is None:
        return []
    own = 1 if snapshot.own_pid is not None else 0
    held = {
        r.name: (r.connections or 0) - (own if r.name == snapshot.probe_user else 0)
        for r in snapshot.roles
        if r.name != snapshot.role.name
    }
    superusers = {r.name for r in snapshot.roles if r.is_superuser}
    held = {name: n for name, n in held.items() if n > 0}
    if not held:
        return []
    total = sum(held.values())
    on_superusers = sum(n for name, n in held.items() if name in superusers)
    described = [
        f"{name} {n}{' (superuser)' if name in superusers else ''}" for name, n in held.items()
    ]
    return [
        OTHER_HOLDERS.finding(
            f"{total} client backend(s) of other roles ({on_superusers} of superusers; this probe not counted) "
            f"take slots from the {snapshot.usable_for_role} usable by {snapshot.role.name}: {', '.join(described)}.",
            evidence=_evidence(snapshot, *(f"{d} client backends" for d in described)),
        )
    ]


CHECKS: tuple[Callable[..., list[Finding]], ...] = (
    server_full,
    low_headroom,
    role_limits,
    database_limits,
    pgbouncer_overcommit,
    pgbouncer_waiting,
    idle_in_transaction,
    app_is_superuser,
    topology_expectations,
    other_holders,
    idle_holders,
    hidden_details,
)


def check_snapshot(snapshot: Snapshot, *, warn_fraction: float = 0.2) -> list[Finding]:
    """Every live finding for one snapshot, most severe first (stable within a severity)."""
    findings = [f for check in CHECKS for f in check(snapshot, warn_fraction=warn_fraction)]
    return sorted(findings, key=lambda f: -f.severity.rank)
