"""Read a pooler's admin console: pgbouncer (1.18 to 1.25), PgCat and PgDog.

The console is the virtual database `pgbouncer` (PgCat and PgDog name theirs in their own
configuration: pass it as the DSN's dbname). It speaks only the simple query protocol, so psycopg must use a `ClientCursor`
(which sends a statement without parameters as a simple query), autocommit (psycopg < 3.2
sends BEGIN/COMMIT with the extended protocol: psycopg #819, #820) and no prepared
statements (`prepare_threshold=None`).

Columns are read by name, never by position: they move between versions (1.18 replaced
`cl_cancel_req` with `cl_active_cancel_req`/`cl_waiting_cancel_req`; 1.18 shows
`SHOW DATABASES.reserve_pool` where current releases show `reserve_pool_size`; newer releases
add per-user `pool_size`, `reserve_pool_size` and `max_user_connections` to `SHOW USERS`),
PgCat adds `cl_idle` and PgDog drops `cl_active` and `sv_used`. A missing column is `None`
(unknown), never zero, and a command the pooler does not have becomes a note.

The pool sum: pgbouncer opens up to pool_size (+ reserve_pool_size) server connections per
(database, user) pair, not per database (pgbouncer #130, #641), capped by
`max_db_connections` per database and `max_user_connections` per user. The sum over the
pairs is what it may ask of the server, to be held against `max_connections`.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from pgslots.live.connect import (
    APPLICATION_NAME,
    ConnectFailure,
    describe_target,
    parse_dsn,
    server_sentence,
)
from pgslots.live.model import (
    PgbouncerClientGroup,
    PgbouncerDatabase,
    PgbouncerDbStats,
    PgbouncerPool,
    PgbouncerState,
)
from pgslots.redact import redact_dsn

# Settings worth showing: pool sizing and waiting. A whitelist, so no secret (auth_query,
# TLS key paths) can slip into a report.
CONFIG_KEYS = (
    "pool_mode",
    "default_pool_size",
    "min_pool_size",
    "reserve_pool_size",
    "reserve_pool_timeout",
    "max_client_conn",
    "max_db_connections",
    "max_user_connections",
    "max_db_client_connections",
    "server_lifetime",
    "server_idle_timeout",
    "query_wait_timeout",
    "query_timeout",
    "client_idle_timeout",
    "idle_transaction_timeout",
    "max_prepared_statements",
)

Row = dict[str, Any]


def connect_admin(dsn: str, connect_timeout: float = 5.0) -> psycopg.Connection[Any]:
    params = parse_dsn(dsn)
    params.update(application_name=APPLICATION_NAME, connect_timeout=max(1, round(connect_timeout)))
    try:
        return psycopg.connect(
            pg_conninfo.make_conninfo("", **params),
            autocommit=True,
            prepare_threshold=None,
            cursor_factory=psycopg.ClientCursor,
        )
    except psycopg.OperationalError as exc:
        raise ConnectFailure(
            "unreachable",
            f"pgbouncer admin console {describe_target(params)}: {server_sentence(str(exc))}",
        ) from None


class AdminConsole:
    """One admin-console connection and the `SHOW` commands, rows as dicts by column name."""

    def __init__(self, conn: psycopg.Connection[Any], target: str) -> None:
        self.conn = conn
        self.target = target
        self.notes: list[str] = []

    def show(self, what: str) -> list[Row] | None:
        """Rows of `SHOW <what>`, or None (with a note) when the pooler does not have it."""
        try:
            cur = self.conn.execute(f"SHOW {what}")
        except psycopg.Error as exc:
            if self.conn.broken or self.conn.closed:
                raise
            self.notes.append(f"SHOW {what} failed: {server_sentence(str(exc))}")
            return None
        names = [column.name for column in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def read_state(
    conn: psycopg.Connection[Any], target: str, admin_database: str = "pgbouncer"
) -> PgbouncerState:
    """Everything the console says that bears on slots, in one pass."""
    console = AdminConsole(conn, target)
    version_rows = console.show("VERSION") or []
    version = str(next(iter(version_rows[0].values()))) if version_rows else None
    kind = _kind(version)
    config = _config(console.show("CONFIG") or [])
    databases = tuple(
        _database(row)
        for row in console.show("DATABASES") or ()
        if row.get("name") != admin_database
    )
    users = {str(row.get("name")): row for row in console.show("USERS") or ()}
    pool_rows = [
        row for row in console.show("POOLS") or () if row.get("database") != admin_database
    ]
    pools = tuple(_pool(row, databases, users, config) for row in pool_rows)
    clients = _client_groups(
        row for row in console.show("CLIENTS") or () if row.get("database") != admin_database
    )
    servers = Counter(str(row.get("state")) for row in console.show("SERVERS") or ())
    stats = tuple(
        _stats(row) for row in console.show("STATS") or () if row.get("database") != admin_database
    )
    capacity, formula = server_side_capacity(pools, databases, users, config)
    notes = list(console.notes)
    if pools:
        notes.append(
            "pools appear once a client has used a (database, user) pair: pairs not used yet are not counted"
        )
    if kind == "pgdog":
        notes.append("PgDog reports no cl_active or sv_used: shown as unknown")
    return PgbouncerState(
        version=version,
        pools=pools,
        config=config,
        server_side_capacity=capacity,
        notes=tuple(notes),
        kind=kind,
        target=target,
        databases=databases,
        clients=clients,
        servers_by_state=dict(sorted(servers.items())),
        stats=stats,
        server_side_capacity_formula=formula,
    )


def read_pgbouncer(dsn: str, connect_timeout: float = 5.0) -> PgbouncerState:
    """Connect, read, close: the probe's single look at the pooler."""
    admin_database = str(parse_dsn(dsn).get("dbname") or "pgbouncer")
    with contextlib.closing(connect_admin(dsn, connect_timeout)) as conn:
        return read_state(conn, redact_dsn(dsn), admin_database)


# -- rows to model --------------------------------------------------------------------------


def _kind(version: str | None) -> str:
    text = (version or "").lower()
    if "pgcat" in text:
        return "pgcat"
    if "pgdog" in text:
        return "pgdog"
    return "pgbouncer"


def _int(row: Row, *names: str) -> int | None:
    """The first of `names` the row has, as an int; None when absent or NULL."""
    for name in names:
        if name in row and row[name] is not None and row[name] != "":
            try:
                return int(row[name])
            except (TypeError, ValueError):
                return None
    return None


def _str(row: Row, *names: str) -> str | None:
    for name in names:
        if row.get(name) not in (None, ""):
            return str(row[name])
    return None


def _flag(row: Row, name: str) -> bool | None:
    value = row.get(name)
    if value is None:
        return None
    return str(value).lower() in ("1", "t", "true", "yes")


def _positive(value: int | None) -> int | None:
    """pgbouncer writes 0 for "no limit"."""
    return value if value else None


def _config(rows: Iterable[Row]) -> dict[str, str]:
    config = {}
    for row in rows:
        key = _str(row, "key", "name")
        if key in CONFIG_KEYS:
            config[key] = str(row.get("value", ""))
    return config


def _database(row: Row) -> PgbouncerDatabase:
    return PgbouncerDatabase(
        name=str(row.get("name")),
        host=_str(row, "host"),
        port=_int(row, "port"),
        database=_str(row, "database"),
        force_user=_str(row, "force_user"),
        pool_size=_int(row, "pool_size"),
        reserve_pool_size=_int(row, "reserve_pool_size", "reserve_pool"),
        max_connections=_positive(_int(row, "max_connections")),
        current_connections=_int(row, "current_connections"),
        pool_mode=_str(row, "pool_mode"),
        paused=_flag(row, "paused"),
        disabled=_flag(row, "disabled"),
    )


def _pool_sizes(
    database: str,
    user: str,
    databases: Iterable[PgbouncerDatabase],
    users: dict[str, Row],
    config: dict[str, str],
) -> tuple[int | None, int | None]:
    """(pool_size, reserve_pool_size) in force for a pair: the user's override (1.23+), else
    the database's (SHOW DATABASES shows it resolved), else the global default."""
    entry = next((d for d in databases if d.name == database), None)
    user_row = users.get(user, {})
    pool_size = _int(user_row, "pool_size")
    if pool_size is None:
        pool_size = (
            entry.pool_size
            if entry and entry.pool_size is not None
            else _int(config, "default_pool_size")
        )
    reserve = _int(user_row, "reserve_pool_size")
    if reserve is None:
        reserve = (
            entry.reserve_pool_size
            if entry and entry.reserve_pool_size is not None
            else _int(config, "reserve_pool_size")
        )
    return pool_size, reserve


def _pool(
    row: Row,
    databases: tuple[PgbouncerDatabase, ...],
    users: dict[str, Row],
    config: dict[str, str],
) -> PgbouncerPool:
    database, user = str(row.get("database")), str(row.get("user"))
    pool_size, reserve = _pool_sizes(database, user, databases, users, config)
    maxwait = (_int(row, "maxwait") or 0) + (_int(row, "maxwait_us") or 0) / 1_000_000
    return PgbouncerPool(
        database=database,
        user=user,
        cl_active=_int(row, "cl_active"),
        cl_waiting=_int(row, "cl_waiting") or 0,
        sv_active=_int(row, "sv_active") or 0,
        sv_idle=_int(row, "sv_idle") or 0,
        sv_used=_int(row, "sv_used"),
        maxwait_seconds=round(maxwait, 6),
        pool_mode=_str(row, "pool_mode"),
        pool_size=pool_size,
        cl_idle=_int(row, "cl_idle"),
        sv_tested=_int(row, "sv_tested"),
        sv_login=_int(row, "sv_login"),
        reserve_pool_size=reserve,
        server_limit=None if pool_size is None else pool_size + (reserve or 0),
    )


def _client_groups(rows: Iterable[Row]) -> tuple[PgbouncerClientGroup, ...]:
    counts: Counter[tuple[str, str, str | None, str]] = Counter()
    waits: dict[tuple[str, str, str | None, str], float] = {}
    for row in rows:
        key = (
            str(row.get("database")),
            str(row.get("user")),
            _str(row, "application_name"),
            str(row.get("state")),
        )
        counts[key] += 1
        wait = (_int(row, "wait") or 0) + (_int(row, "wait_us") or 0) / 1_000_000
        if key[3] == "waiting":
            waits[key] = max(waits.get(key, 0.0), wait)
    return tuple(
        PgbouncerClientGroup(
            *key, count=count, max_wait_seconds=round(waits[key], 6) if key in waits else None
        )
        for key, count in sorted(
            counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1], item[0][3])
        )
    )


def _stats(row: Row) -> PgbouncerDbStats:
    return PgbouncerDbStats(
        database=str(row.get("database")),
        total_xact_count=_int(row, "total_xact_count"),
        total_wait_time_us=_int(row, "total_wait_time"),
        avg_wait_time_us=_int(row, "avg_wait_time"),
        avg_xact_time_us=_int(row, "avg_xact_time"),
    )


def server_side_capacity(
    pools: tuple[PgbouncerPool, ...],
    databases: tuple[PgbouncerDatabase, ...],
    users: dict[str, Row],
    config: dict[str, str],
) -> tuple[int | None, str]:
    """The most server connections the pooler may open for the pairs it serves, with the
    formula: the sum of (pool_size + reserve_pool_size) over pairs, capped per database by
    max_db_connections and per user by max_user_connections."""
    if not pools or any(p.server_limit is None for p in pools):
        return None, "unknown: a pool's size was not reported" if pools else ""
    by_database: dict[str, list[PgbouncerPool]] = defaultdict(list)
    by_user: dict[str, list[PgbouncerPool]] = defaultdict(list)
    for pool in pools:
        by_database[pool.database].append(pool)
        by_user[pool.user].append(pool)
    terms = " + ".join(
        f"{p.database}/{p.user} {p.pool_size}+{p.reserve_pool_size or 0}" for p in pools
    )
    total = sum(p.server_limit or 0 for p in pools)
    formula = f"{terms} = {total}"

    def capped(
        groups: dict[str, list[PgbouncerPool]], cap_of: Any, label: str
    ) -> tuple[int, list[str]]:
        sum_capped, caps = 0, []
        for name, members in groups.items():
            wanted = sum(p.server_limit or 0 for p in members)
            cap = cap_of(name)
            if cap is not None and cap < wanted:
                caps.append(f"{label} {name}={cap}")
                wanted = cap
            sum_capped += wanted
        return sum_capped, caps

    global_user_cap = _positive(_int(config, "max_user_connections"))
    by_db_total, db_caps = capped(
        by_database,
        lambda name: next((d.max_connections for d in databases if d.name == name), None),
        "max_db_connections",
    )
    by_user_total, user_caps = capped(
        by_user,
        lambda name: (
            _positive(_int(users.get(name, {}), "max_user_connections")) or global_user_cap
        ),
        "max_user_connections",
    )
    capacity = min(total, by_db_total, by_user_total)
    if capacity < total:
        formula += f", capped by {', '.join(db_caps + user_caps)} to {capacity}"
    return capacity, formula
