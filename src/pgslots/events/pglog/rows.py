"""One record of a csvlog or jsonlog file, fed to the shared `ServerLogState`.

Both formats carry the session's fields in columns (user, database, client, application,
SQLSTATE, and the `ps` display that says where a connection was refused), so unlike
stderr they need the pid only to find the application name that the `connection
authorized` line knew and the refused backend's own row left empty.
"""

from __future__ import annotations

from typing import Any

from pgslots.events.pglog import lines as msg
from pgslots.events.pglog.clock import second_of
from pgslots.events.pglog.trace import ServerLogState


def feed_row(
    state: ServerLogState,
    *,
    log_time: str,
    pid: str,
    severity: str,
    message: str,
    user: str | None,
    db: str | None,
    app: str | None,
    client: str | None,
    sqlstate: str | None,
    stage: str | None,
) -> list[Any] | None:
    """Feed one record; returns the new FATAL group (for the caller to set its row), if any.
    Raises ValueError when the record is not understood."""
    if not state.at(second_of(log_time)):
        raise ValueError(f"log_time {log_time!r} is not a time")
    if severity == "FATAL":
        return state.fatal(pid, message, sqlstate, user, db, app, client, stage)
    if severity != "LOG":
        return None
    if message.startswith("connection authorized: "):
        parsed = msg.authorized(message.encode())
        if parsed is None:
            raise ValueError("connection authorized message not understood")
        state.authorized(
            pid,
            user or parsed[0].decode(),
            db or parsed[1].decode(),
            app or (parsed[2].decode() if parsed[2] else None),
            client,
        )
    elif message.startswith("disconnection: "):
        if state.disconnection(pid):
            state.unseen_session(msg.disconnection(message.encode()))
    elif message.startswith("replication connection authorized: "):
        state.replication(pid)
    elif message.startswith("starting PostgreSQL "):
        version = msg.server_version(message.encode())
        if version:
            state.version(version)
    elif message.startswith("database system is ready to accept connections"):
        state.restart()
    return None
