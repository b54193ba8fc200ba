"""`pgslots probe`: one snapshot on one connection, or the refusal as evidence.

When the server refuses the probe because it is full, the refusal becomes the snapshot
(`Snapshot.refused`) and, if given, the pgbouncer admin console is read instead: the pooler
still answers when the server has no slot, and tells who waits and how many server
connections it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import psycopg

from pgslots.live.connect import ConnectFailure, ConnectSettings, ServerRefused, connect, parse_dsn
from pgslots.live.model import Snapshot, utc_millis
from pgslots.live.pgbouncer import read_pgbouncer
from pgslots.live.snapshot import SnapshotOptions, take_snapshot


@dataclasses.dataclass(frozen=True)
class ProbeRequest:
    server: ConnectSettings
    pgbouncer_dsn: str | None = None
    options: SnapshotOptions = dataclasses.field(default_factory=SnapshotOptions)


def probe(
    request: ProbeRequest,
    *,
    while_connected: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> Snapshot:
    """Take one snapshot. `while_connected` runs after the snapshot, before the connection is
    closed: a hook for tests that check, from another session, what the probe holds."""
    try:
        conn = connect(request.server)
    except ServerRefused as refused:
        return _with_pgbouncer(refused_snapshot(request.server, refused), request, fallback=True)
    with contextlib.closing(conn):
        snapshot = take_snapshot(conn, request.server.target, request.options)
        if while_connected is not None:
            while_connected(conn)
    return _with_pgbouncer(snapshot, request, fallback=False)


def refused_snapshot(server: ConnectSettings, refused: ServerRefused) -> Snapshot:
    params = parse_dsn(server.dsn)
    return Snapshot(
        taken_at=utc_millis(),
        target=server.target,
        refused=refused.refusal,
        probe_user=str(params.get("user") or os.environ.get("PGUSER") or "") or None,
        database=str(params.get("dbname") or os.environ.get("PGDATABASE") or "") or None,
    )


def _with_pgbouncer(snapshot: Snapshot, request: ProbeRequest, *, fallback: bool) -> Snapshot:
    if not request.pgbouncer_dsn:
        return snapshot
    try:
        state = read_pgbouncer(request.pgbouncer_dsn, request.server.connect_timeout)
    except ConnectFailure as exc:
        if not fallback:
            raise
        # The server's refusal is the main fact; an unreachable pooler only adds a note.
        return dataclasses.replace(snapshot, notes=(*snapshot.notes, f"pgbouncer not read: {exc}"))
    return dataclasses.replace(snapshot, pgbouncer=state)
