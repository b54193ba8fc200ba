"""The server messages that matter for connection slots, parsed.

Formats from PG15 and PG18 sources (domain reference §1.4):

* `connection received: host=%s port=%s` (port absent for Unix sockets: `host=[local]`);
* `connection authorized: user=%s database=%s application_name=%s` + optional SSL/GSS info;
* `replication connection authorized: user=%s ...` (walsenders: no `max_connections` slot);
* `disconnection: session time: %d:%02d:%02d.%03d user=%s database=%s host=%s port=%s`;
* `starting PostgreSQL 18.6 on x86_64-pc-linux-gnu, ...`;
* `database system is ready to accept connections`: every earlier backend is gone.
"""

from __future__ import annotations

import re

RECEIVED = b"connection received: host="
AUTHORIZED = b"connection authorized: "
REPLICATION_AUTHORIZED = b"replication connection authorized: "
DISCONNECTION = b"disconnection: "
STARTING = b"starting PostgreSQL "
READY = b"database system is ready to accept connections"
_AUTHORIZED = re.compile(
    rb"connection authorized: user=(\S*) database=(\S*)(?: application_name=(.*?))?"
    rb"(?: SSL enabled \(.*| GSS \(.*)?\s*"
)
_DISCONNECTION = re.compile(rb"disconnection: session time: (\d+:\d\d:\d\d\.\d{3})")
_STARTING = re.compile(rb"starting PostgreSQL (\d+(?:\.\d+)?(?:[a-z]+\d*)?)")

UNKNOWN_VALUES: frozenset[bytes | str] = frozenset({b"", b"[unknown]", "", "[unknown]"})


def authorized(message: bytes) -> tuple[bytes, bytes, bytes | None] | None:
    """(user, database, application_name or None)."""
    match = _AUTHORIZED.fullmatch(message)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3) or None


def disconnection(message: bytes) -> float | None:
    """The session's length in seconds."""
    match = _DISCONNECTION.match(message)
    if match is None:
        return None
    hours, minutes, rest = match.group(1).split(b":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def server_version(message: bytes) -> str | None:
    match = _STARTING.match(message)
    return match.group(1).decode("ascii") if match else None
