"""From the open connection to a `Snapshot`: run the queries, group, do the slot arithmetic.

The queries run in one read-only transaction that is rolled back at the end, so the next
snapshot on the same connection (the watch loop) sees fresh activity data: PostgreSQL keeps
the activity snapshot for the length of a transaction.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import psycopg

from pgslots.deploy.model import Topology
from pgslots.errors import InputError
from pgslots.live import queries
from pgslots.live.connect import APPLICATION_NAME
from pgslots.live.expectations import attribute
from pgslots.live.model import (
    BackendGroup,
    DatabaseLimit,
    GroupExpectation,
    RoleInfo,
    Snapshot,
    utc_millis,
)
from pgslots.live.slots import headroom, usable_slots


@dataclasses.dataclass(frozen=True)
class SnapshotOptions:
    app_role: str | None = None  # usable slots are computed for this role; default: the probe's own
    topology: Topology | None = None  # an audit's topology, for expected counts per group


def take_snapshot(
    conn: psycopg.Connection[Any], target: str, options: SnapshotOptions = SnapshotOptions()
) -> Snapshot:
    started = time.perf_counter()
    try:
        user, dbname, own_pid, now, privileged = queries.fetch(conn, queries.IDENTITY)[0]
        settings = dict(queries.fetch(conn, queries.SETTINGS))
        activity = queries.fetch(conn, queries.ACTIVITY)
        other_backends = dict(queries.fetch(conn, queries.OTHER_BACKENDS))
        version_num = int(settings["server_version_num"])
        app_role = options.app_role or user
        users_seen = sorted({row[1] for row in activity if row[1]})
        role_rows = queries.fetch(
            conn, queries.roles_query(version_num), {"names": [app_role, user, *users_seen]}
        )
        databases_seen = sorted({row[0] for row in activity if row[0]})
        database_rows = queries.fetch(conn, queries.DATABASES, {"names": [dbname, *databases_seen]})
    finally:
        if not conn.closed:
            conn.rollback()
    query_ms = (time.perf_counter() - started) * 1000

    backends = tuple(_backend_group(row) for row in activity)
    hidden_backends = sum(row[6] for row in activity if row[5])
    client_backends = sum(b.count for b in backends)
    by_user = Counter[str]()
    by_database = Counter[str]()
    for backend in backends:
        by_user[backend.user or ""] += backend.count
        by_database[backend.database or ""] += backend.count

    roles = tuple(
        RoleInfo(name, superuser, reserved, limit, by_user.get(name, 0))
        for name, superuser, limit, reserved in role_rows
    )
    role = next((r for r in roles if r.name == app_role), None)
    if role is None:
        raise InputError(f"--app-role {app_role}: no such role on the server")
    databases = tuple(
        DatabaseLimit(name, limit, by_database.get(name, 0)) for name, limit in database_rows
    )

    max_connections = int(settings["max_connections"])
    superuser_reserved = int(settings["superuser_reserved_connections"])
    reserved = int(settings["reserved_connections"]) if "reserved_connections" in settings else None
    usable, usable_formula = usable_slots(max_connections, superuser_reserved, reserved, role)
    own_database = next((d for d in databases if d.name == dbname), None)
    room, limited_by, room_formula = headroom(usable, client_backends, role, own_database)

    expectations: tuple[GroupExpectation, ...] = ()
    if options.topology is not None:
        backends, expectations = attribute(
            backends, options.topology, {role.name}, APPLICATION_NAME
        )

    hidden: list[str] = []
    notes: list[str] = []
    if not privileged:
        grant = f"GRANT pg_monitor TO {user}"
        if hidden_backends:
            hidden.append(
                f"{hidden_backends} client backends of other roles: state, client address, idle ages "
                f"and backend type are hidden from role {user} (needs pg_read_all_stats; {grant})"
            )
            notes.append(
                "backend type hidden: other roles' sessions are counted as client backends when they "
                "have a database and a user (their logical walsenders or parallel workers would be counted too)"
            )
        hidden.append(f"other roles' background processes are not counted by type ({grant})")
    return Snapshot(
        taken_at=utc_millis(now),
        target=target,
        server_version=settings.get("server_version"),
        server_version_num=version_num,
        max_connections=max_connections,
        superuser_reserved_connections=superuser_reserved,
        reserved_connections=reserved,
        role=role,
        usable_for_role=usable,
        client_backends=client_backends,
        backends=backends,
        database_limits=databases,
        hidden=tuple(hidden),
        notes=tuple(notes),
        probe_user=user,
        database=dbname,
        own_pid=own_pid,
        usable_formula=usable_formula,
        headroom_for_role=room,
        headroom_limited_by=limited_by,
        headroom_formula=room_formula,
        roles=roles,
        other_backends=other_backends,
        expectations=expectations,
        query_ms=round(query_ms, 3),
    )


def _backend_group(row: tuple[Any, ...]) -> BackendGroup:
    database, user, application, client, state, is_hidden, count, idle_s, idle_tx_s, _is_own = row
    return BackendGroup(
        database=database,
        user=user,
        application=application,
        client=None if is_hidden else client,
        state=None if is_hidden else state,
        count=count,
        max_idle_seconds=_round(idle_s),
        max_idle_in_transaction_seconds=_round(idle_tx_s),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(max(float(value), 0.0), 3)
