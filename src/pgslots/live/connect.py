"""One careful connection to the server being investigated.

Monitoring tools that open several connections, or leak them, make a slot outage worse
(PgHero #253, postgres_exporter #898). pgslots opens exactly one, identifies itself
(`application_name=pgslots`, so it can be told apart and excluded), gives up quickly
(`connect_timeout`), cannot hang on a lock or a slow query (`statement_timeout`,
`lock_timeout`, `idle_in_transaction_session_timeout`), and cannot write
(`default_transaction_read_only`, and every snapshot runs in a read-only transaction that
is rolled back).

A failed connection is sorted into what it means for the user:

* the server is full for this role (53300 and the reserved-slot messages): evidence, a
  `Refusal`, not an error. psycopg gives no SQLSTATE for connection failures (domain
  reference §2.2), so the text is classified with `events.taxonomy.classify`;
* the input is wrong or the server cannot be reached (bad DSN, wrong port, wrong password,
  not a PostgreSQL server): `ConnectFailure`, one line, exit 2.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from pgslots.errors import InputError
from pgslots.events.model import SLOT_EXHAUSTION, Category
from pgslots.events.taxonomy import classify, reserved_wording
from pgslots.live.model import Refusal
from pgslots.redact import REDACTOR, redact_dsn

APPLICATION_NAME = "pgslots"


@dataclasses.dataclass(frozen=True)
class ConnectSettings:
    """How carefully to connect: all timeouts in seconds."""

    dsn: str
    connect_timeout: float = 5.0
    statement_timeout: float = 5.0
    lock_timeout: float = 1.0

    @property
    def target(self) -> str:
        """The DSN as it may be shown: password masked."""
        return redact_dsn(self.dsn)


class ConnectFailure(InputError):
    """The server could not be reached or would not let us log in (not because it is full).

    `kind` is one of "dsn", "unreachable", "login", "not_postgres", "not_ready"."""

    def __init__(self, kind: str, what: str) -> None:
        self.kind = kind
        super().__init__(what)


class ServerRefused(Exception):
    """The server is full for the role we log in as: the `Refusal` is the evidence."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parameters, or `ConnectFailure("dsn")` with libpq's reason. The password it
    carries is registered with the redactor so that no later output can show it."""
    try:
        params = pg_conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ConnectFailure(
            "dsn", f"malformed DSN {redact_dsn(dsn)!r}: {_first_line(str(exc))}"
        ) from None
    REDACTOR.register(str(params.get("password") or ""))
    return params


def connect(settings: ConnectSettings, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """The one connection: identified, time-limited, read-only. Raises `ServerRefused` when
    the server is full for our role, `ConnectFailure` for everything else that stops us."""
    params = parse_dsn(settings.dsn)
    params.update(
        application_name=APPLICATION_NAME,
        connect_timeout=max(1, round(settings.connect_timeout)),
    )
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 30)
    try:
        conn = psycopg.connect(pg_conninfo.make_conninfo("", **params), autocommit=True)
    except psycopg.OperationalError as exc:
        raise failure_of(str(exc), params) from None
    try:
        _limit_session(conn, settings)
        conn.autocommit = autocommit
        conn.read_only = True
    except psycopg.Error:
        conn.close()
        raise
    return conn


def _limit_session(conn: psycopg.Connection[Any], settings: ConnectSettings) -> None:
    """Session limits, set once before anything else runs. Set here rather than in the
    startup packet's `options`, which a pooler in front of the server may refuse."""
    limits = {
        "statement_timeout": _ms(settings.statement_timeout),
        "lock_timeout": _ms(settings.lock_timeout),
        # A probe stuck between two statements must not hold a transaction open.
        "idle_in_transaction_session_timeout": _ms(max(settings.statement_timeout * 2, 10.0)),
        "default_transaction_read_only": "on",
    }
    calls = ", ".join("set_config(%s, %s, false)" for _ in limits)
    conn.execute(f"SELECT {calls}", [v for item in limits.items() for v in item])  # one round trip


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


# -- what a failed connection means ---------------------------------------------------------

_LOGIN = re.compile(
    r"password authentication failed|no password supplied|no pg_hba\.conf entry|"
    r"role \"[^\"]*\" does not exist|database \"[^\"]*\" does not exist|"
    r"permission denied for database|is not permitted to log in|Ident authentication failed|"
    r"peer authentication failed|SCRAM authentication|certificate",
    re.IGNORECASE,
)
_NOT_POSTGRES = re.compile(
    r"invalid response to SSL negotiation|expected authentication request from server|"
    r"received invalid response|unexpected message from server|"
    r"server closed the connection unexpectedly|invalid (?:startup )?packet|lost synchronization",
    re.IGNORECASE,
)


def failure_of(message: str, params: dict[str, Any] | None = None) -> Exception:
    """`ServerRefused` when the message says the server is full for us, else the
    `ConnectFailure` that names the problem in one line."""
    categories = classify(message)
    if any(c in SLOT_EXHAUSTION for c in categories):
        return ServerRefused(refusal_of(message, categories))
    where = describe_target(params or {})
    reason = server_sentence(message)
    if Category.SERVER_NOT_READY in categories:
        return ConnectFailure(
            "not_ready", f"{where}: the server is not accepting connections: {reason}"
        )
    if _LOGIN.search(message):
        return ConnectFailure("login", f"{where}: cannot log in: {reason}")
    if _NOT_POSTGRES.search(message):
        return ConnectFailure(
            "not_postgres", f"{where}: does not answer like a PostgreSQL server: {reason}"
        )
    if "invalid" in message and "connection option" in message:
        return ConnectFailure("dsn", f"malformed DSN: {reason}")
    return ConnectFailure("unreachable", f"{where}: cannot reach the server: {reason}")


def refusal_of(message: str, categories: tuple[Category, ...] | None = None) -> Refusal:
    """The refusal, with who could still get in (domain reference §1.2-1.3)."""
    categories = categories or classify(message)
    slot = [c for c in categories if c in SLOT_EXHAUSTION]
    # With several attempts in one message, the tightest refusal tells who could still connect.
    order = [
        Category.TOO_MANY_CLIENTS,
        Category.RESERVED_SUPERUSER,
        Category.RESERVED_ROLE,
        Category.DATABASE_LIMIT,
        Category.ROLE_LIMIT,
        Category.SLOTS_UNSPECIFIED,
    ]
    primary = min(slot, key=order.index)
    return Refusal(
        category=primary.value,
        message=server_sentence(message),
        who_could_connect=_who_could_connect(primary, message),
        categories=tuple(c.value for c in categories),
    )


def _who_could_connect(category: Category, message: str) -> str:
    if category is Category.TOO_MANY_CLIENTS:
        return (
            "nobody, not even a superuser: every max_connections slot is taken; end sessions "
            "from one already open (pg_terminate_backend) or wait"
        )
    if category is Category.RESERVED_SUPERUSER:
        if reserved_wording(message) == "pre16":
            return "only superusers: the free slots left are the superuser_reserved_connections"
        return (
            "only roles with the SUPERUSER attribute: the free slots left are the "
            "superuser_reserved_connections (pg_use_reserved_connections members are refused too)"
        )
    if category is Category.RESERVED_ROLE:
        return (
            "superusers and roles with privileges of pg_use_reserved_connections (PG16+): the free "
            "slots left are the reserved_connections; a monitoring role granted it can still probe"
        )
    if category is Category.ROLE_LIMIT:
        return "other roles: this role is at its CONNECTION LIMIT (rolconnlimit), the server itself may have room"
    if category is Category.DATABASE_LIMIT:
        return (
            "superusers, or any role to another database: this database is at its CONNECTION LIMIT"
        )
    return "unknown: SQLSTATE 53300 in a wording pgslots does not know (a translated server?)"


def describe_target(params: dict[str, Any]) -> str:
    shown = {k: params[k] for k in ("host", "hostaddr", "port", "user", "dbname") if params.get(k)}
    return " ".join(f"{k}={v}" for k, v in shown.items()) or "default server"


def server_sentence(message: str) -> str:
    """The server's or libpq's own sentence, on one line, without psycopg's wrappers."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else message
    first = re.sub(r"^connection failed:\s*", "", first)
    first = re.sub(
        r"^connection to server (?:at \"[^\"]*\"(?: \([^)]*\))?, port \d+|on socket \"[^\"]*\") failed:\s*",
        "",
        first,
    )
    first = re.sub(r"^FATAL:\s+", "", first)
    return redact_dsn(first)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
