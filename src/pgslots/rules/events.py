"""Findings from an `Incident` alone (codes PGS100-199): what the errors themselves say.

These are what `pgslots events` can tell without the repository or the server, so that a
scheduled `pgslots events app.log --fail-on error` can page on refusals. Each message gives
the counts it rests on; the evidence is the first source rows of that category, so that a
count leads back to its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pgslots.events.model import Category, Incident, SourceRef
from pgslots.evidence import Evidence, Resolution
from pgslots.findings import Check, Finding, Severity, define

AREA = "events"

SERVER_FULL = define(
    "PGS101",
    "Connections were refused: the server had no slot left",
    Severity.ERROR,
    "Find who held the slots (pgslots probe / watch, or the server log's backends) and what the "
    "deployment can open (pgslots audit); then bring the demand under the usable slots.",
    area=AREA,
)
LIMIT_REACHED = define(
    "PGS102",
    "A role or database reached its CONNECTION LIMIT",
    Severity.ERROR,
    "Raise the limit (ALTER ROLE/DATABASE ... CONNECTION LIMIT) or lower that role's demand; "
    "the server itself may still have free slots.",
    area=AREA,
)
POOLER_REFUSED = define(
    "PGS103",
    "The connection pool or pgbouncer refused or timed out clients",
    Severity.WARNING,
    "The pool is smaller than the demand or transactions hold it too long: check pool sizes, "
    "max_client_conn, query_wait_timeout and slow transactions.",
    area=AREA,
)
STILL_GROWING = define(
    "PGS104",
    "The failures grew over the window: contention, not a restart blip",
    Severity.WARNING,
    "Demand rose against a fixed number of slots: look at who holds them (pgslots probe / watch) "
    "and what the deployment can open (pgslots audit); it may not be over.",
    area=AREA,
)
STALE = define(
    "PGS105",
    "The server closed connections the application still used",
    Severity.INFO,
    "A restart, failover or idle timeout closed persistent connections: CONN_HEALTH_CHECKS = True "
    "lets Django replace them before a request uses them.",
    area=AREA,
)
SKIPPED_LINES = define(
    "PGS106",
    "Some input lines could not be read and were skipped",
    Severity.WARNING,
    "The counts leave those lines out: check the format (--input-format, --log-line-prefix) and "
    "the skipped examples listed with each input.",
    area=AREA,
)

SLOT_EXHAUSTION = (
    Category.TOO_MANY_CLIENTS,
    Category.RESERVED_SUPERUSER,
    Category.RESERVED_ROLE,
    Category.SLOTS_UNSPECIFIED,
)
LIMITS = (Category.ROLE_LIMIT, Category.DATABASE_LIMIT)
POOLER = (
    Category.POOL_TIMEOUT,
    Category.PGBOUNCER_MAX_CLIENT_CONN,
    Category.PGBOUNCER_QUERY_WAIT_TIMEOUT,
    Category.PGBOUNCER_OTHER,
)
EVIDENCE_ROWS = 3  # first rows per category: enough to find the rest with the same search


def _evidence(refs: Iterable[SourceRef]) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(ref.path, ref.line, f"{ref.format} record", Resolution.LITERAL) for ref in refs
    )


def _counted(incident: Incident, categories: Iterable[Category]) -> list[tuple[Category, int]]:
    return [
        (c, incident.by_category.get(c.value, 0))
        for c in categories
        if incident.by_category.get(c.value, 0) > 0
    ]


def _category_finding(
    incident: Incident, check: Check, categories: Iterable[Category]
) -> list[Finding]:
    counted = _counted(incident, categories)
    if not counted:
        return []
    parts = ", ".join(f"{n} {category.value}" for category, n in counted)
    rows = [
        ref
        for category, _ in counted
        for ref in incident.samples.get(category.value, ())[:EVIDENCE_ROWS]
    ]
    message = f"{parts} (an event with several attempts counts under each of its categories)."
    return [check.finding(message, evidence=_evidence(rows))]


def server_full(incident: Incident) -> list[Finding]:
    return _category_finding(incident, SERVER_FULL, SLOT_EXHAUSTION)


def limit_reached(incident: Incident) -> list[Finding]:
    return _category_finding(incident, LIMIT_REACHED, LIMITS)


def pooler_refused(incident: Incident) -> list[Finding]:
    return _category_finding(incident, POOLER_REFUSED, POOLER)


def stale_connections(incident: Incident) -> list[Finding]:
    return _category_finding(incident, STALE, (Category.STALE_CONNECTION,))


def still_growing(incident: Incident) -> list[Finding]:
    shape = incident.shape
    if shape is None or shape.label != "sustained_growth":
        return []
    return [STILL_GROWING.finding(shape.rule)]


def skipped_lines(incident: Incident) -> list[Finding]:
    skipped = [i for i in incident.inputs if i.skipped]
    if not skipped:
        return []
    message = "; ".join(f"{i.path}: {i.skipped} of {i.records + i.skipped} lines" for i in skipped)
    rows = [ref for i in skipped for ref in i.skipped_examples[:EVIDENCE_ROWS]]
    return [SKIPPED_LINES.finding(message, evidence=_evidence(rows))]


CHECKS: tuple[Callable[[Incident], list[Finding]], ...] = (
    server_full,
    limit_reached,
    pooler_refused,
    still_growing,
    stale_connections,
    skipped_lines,
)


def check_incident(incident: Incident) -> list[Finding]:
    """Every events finding, in code order."""
    return sorted((f for check in CHECKS for f in check(incident)), key=lambda f: f.code)
