"""From a message (and its SQLSTATE when the input has one) to the categories it reports.

The text is what we match, because drivers give no SQLSTATE for connection failures:
psycopg's `e.sqlstate` and psycopg2's `pgcode` are None (domain reference §2.2). Wrappers
differ by driver and version, but all of them keep the server's own sentence, so we look
for the server sentences anywhere in the text:

* psycopg <= 3.1.18: `connection failed: FATAL:  <msg>` (prefix stripped, IPv6 mangled);
* psycopg >= 3.1.19: `connection failed: connection to server at "h", port p failed: FATAL:  <msg>`;
* psycopg >= 3.2.8: several attempts in one text, after `Multiple connection attempts failed.`;
* psycopg2: the libpq text with a trailing newline;
* server logs: the bare sentence after `FATAL:  `.

A text that carries several attempts keeps every category it mentions, in order of first
appearance, and counts once as an event: that is how "402 reserved / 22 too many / 15 both"
stays reproducible.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pgslots.events.model import Category

# Server sentences (PostgreSQL 12-18), pooler and driver texts. One alternation, scanned once.
_PATTERNS: tuple[tuple[Category, str], ...] = (
    (Category.TOO_MANY_CLIENTS, r"sorry, too many clients already"),
    # <= 15: "...for non-replication superuser connections"; 16+: "...with the SUPERUSER attribute"
    (
        Category.RESERVED_SUPERUSER,
        r"remaining connection slots are reserved for (?:non-replication superuser connections"
        r"|roles with the SUPERUSER attribute)",
    ),
    # 16+; also the wording of pre-release 16 builds, without quotes and "the ... role".
    (
        Category.RESERVED_ROLE,
        r"remaining connection slots are reserved for roles with privileges of "
        r"(?:the )?\"?pg_use_reserved_connections\"?",
    ),
    (Category.ROLE_LIMIT, r"too many connections for role \"(?P<role>[^\"]*)\""),
    (Category.DATABASE_LIMIT, r"too many connections for database \"(?P<database>[^\"]*)\""),
    (
        Category.WALSENDER_LIMIT,
        r"number of requested standby connections exceeds \"?max_wal_senders",
    ),
    (
        Category.SERVER_NOT_READY,
        r"the database system is (?:starting up|shutting down|in recovery mode"
        r"|not yet accepting connections|not accepting connections)",
    ),
    (
        Category.POOL_TIMEOUT,
        r"couldn't get a connection after [\d.]+ sec|pool initialization incomplete after"
        r"|requests waiting|\bPoolTimeout\b|\bTooManyRequests\b",
    ),
    (Category.PGBOUNCER_MAX_CLIENT_CONN, r"no more connections allowed \(max_client_conn\)"),
    (Category.PGBOUNCER_QUERY_WAIT_TIMEOUT, r"\bquery_wait_timeout\b"),
    (Category.PGBOUNCER_LOGIN_FAILED, r"server login has been failing|\bserver_login_retry\b"),
    (
        Category.PGBOUNCER_OTHER,
        r"\bpooler error\b|pgbouncer cannot connect to server|\bclient_login_timeout\b"
        r"|no such database: |\bidle_transaction_timeout\b|server conn crashed\?",
    ),
    (
        Category.STALE_CONNECTION,
        r"server closed the connection unexpectedly|terminating connection due to administrator command"
        r"|SSL SYSCALL error: EOF detected|SSL connection has been closed unexpectedly"
        r"|consuming input failed|the connection is lost|connection already closed",
    ),
    (
        Category.NETWORK,
        r"Connection refused|Connection timed out|timeout expired|No route to host|Network is unreachable"
        r"|could not translate host name|Name or service not known|Temporary failure in name resolution"
        r"|nodename nor servname provided|could not connect to server|Connection reset by peer",
    ),
)

_GROUP_OF = {f"c{i}": category for i, (category, _pattern) in enumerate(_PATTERNS)}
_SCANNER = re.compile(
    "|".join(
        f"(?P<c{i}>{re.sub(r'[(][?]P<[a-z]+>', '(?:', pattern)})"
        for i, (_c, pattern) in enumerate(_PATTERNS)
    )
)

# SQLSTATEs that settle the category when the wording is not recognised (a translated
# server, lc_messages != C). 53300 covers several conditions, so it gets its own bucket
# instead of a guess.
_BY_SQLSTATE = {
    "53300": Category.SLOTS_UNSPECIFIED,
    "57P03": Category.SERVER_NOT_READY,
    "57P01": Category.STALE_CONNECTION,
    "08006": Category.STALE_CONNECTION,
    "08001": Category.NETWORK,
}

_CLASS_HINTS = {
    "PoolTimeout": Category.POOL_TIMEOUT,
    "TooManyRequests": Category.POOL_TIMEOUT,
}


@functools.lru_cache(maxsize=65536)
def classify(
    message: str, sqlstate: str | None = None, error_class: str | None = None
) -> tuple[Category, ...]:
    """Every category the text reports, in order of first appearance; `(OTHER,)` if none.

    Cached: in an incident the same few texts repeat thousands of times.
    """
    found: list[Category] = []
    for match in _SCANNER.finditer(message):
        category = _GROUP_OF[match.lastgroup or ""]
        if category not in found:
            found.append(category)
    if not found and error_class:
        hint = _CLASS_HINTS.get(error_class.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
        if hint:
            found.append(hint)
    if not found and sqlstate in _BY_SQLSTATE:
        found.append(_BY_SQLSTATE[sqlstate])
    return tuple(found) or (Category.OTHER,)


@functools.lru_cache(maxsize=1024)
def combination_key(categories: tuple[Category, ...]) -> str:
    """A canonical name for a set of categories, independent of the order they appeared in:
    "reserved_superuser+too_many_clients" (cached: the report asks it of every event, often)."""
    order = list(Category)
    return "+".join(c.value for c in sorted(set(categories), key=order.index))


_ROLE = re.compile(r"too many connections for role \"([^\"]*)\"")
_DATABASE = re.compile(r"too many connections for database \"([^\"]*)\"")


def limited_role(message: str) -> str | None:
    """The role named by a `too many connections for role "x"` message."""
    match = _ROLE.search(message)
    return match.group(1) if match else None


def limited_database(message: str) -> str | None:
    match = _DATABASE.search(message)
    return match.group(1) if match else None


ReservedWording = Literal["pre16", "16+"]


def reserved_wording(message: str) -> ReservedWording | None:
    """Which server generation wrote a reserved-slot message, from its wording alone
    (domain reference §1.3): "non-replication superuser connections" is PG <= 15 and means
    the connecting role was not a superuser; "SUPERUSER attribute" and
    "pg_use_reserved_connections" are PG 16+."""
    if "non-replication superuser connections" in message:
        return "pre16"
    if "with the SUPERUSER attribute" in message or "pg_use_reserved_connections" in message:
        return "16+"
    return None
