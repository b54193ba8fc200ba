"""Findings that need two inputs at once (PGS400-499): events against the audited process
groups, observed peaks against the budget, refusal wordings against the role and version,
time windows against each other, and inputs that were given but could not be used.

Each rule reads the `Joined` context and returns findings; none reads a file or renders.
"""

from __future__ import annotations

from collections.abc import Callable

from pgslots import versions
from pgslots.diagnose.context import Joined
from pgslots.evidence import Evidence, Resolution
from pgslots.findings import Finding, Severity, define

AREA = "diagnose"

FAILED_BEFORE_VIEW = define(
    "PGS401",
    "Web requests failed before their view ran",
    Severity.INFO,
    "The request could not get a connection at all, at its first database access (session or user lookup, "
    "ATOMIC_REQUESTS at view entry): a slot-supply problem, not a slow view. The middleware in the "
    "transaction name is where the APM stopped renaming, not necessarily the code that queried.",
    area=AREA,
)
GROUP_NOT_AUDITED = define(
    "PGS402",
    "Failures come from a process group the audit did not find",
    Severity.WARNING,
    "Audit the repository (or service) that runs it, or add it with --assume; until then the budget "
    "leaves out every connection it holds.",
    area=AREA,
)
PEAK_REACHED_USABLE = define(
    "PGS403",
    "Observed client backends reached the usable slots",
    Severity.ERROR,
    "The server was full: see which users, applications and addresses held the slots (the backends "
    "table of the probe or watch record) and cap the largest group first.",
    area=AREA,
)
BUDGET_EXPLAINS_INCIDENT = define(
    "PGS404",
    "The audited demand can exceed the usable slots, as the incident shows",
    Severity.ERROR,
    "Bring the worst case under the usable slots: bound every unbounded group (a pool, a concurrency "
    "limit, pgbouncer) before adding slots.",
    area=AREA,
)
UNEXPLAINED_EXHAUSTION = define(
    "PGS405",
    "Slots ran out although the audited demand fits",
    Severity.WARNING,
    "Something the audit does not see holds connections: another application or team, superuser "
    "sessions, deploy overlap (old and new processes), or a count assumed too low. List the holders "
    "with pgslots probe during the next burst.",
    area=AREA,
)
ROLE_CONTRADICTS_WORDING = define(
    "PGS406",
    "The refusals contradict the audited role",
    Severity.WARNING,
    "A superuser is never refused with the reserved-slot wording: the production role differs from the "
    "one audited (compose files often configure the local superuser). Check the role production uses.",
    area=AREA,
)
VERSION_CONTRADICTS_WORDING = define(
    "PGS407",
    "The refusal wording belongs to another PostgreSQL version",
    Severity.WARNING,
    "The events come from another server, or the server was upgraded since the incident; compare "
    "SELECT version() with the incident's server.",
    area=AREA,
)
WINDOWS_DISAGREE = define(
    "PGS408",
    "Inputs cover different time windows",
    Severity.WARNING,
    "When the offset is a whole number of hours, one input is in another time zone: give the events' "
    "zone to pgslots events (--tz) or record in UTC.",
    area=AREA,
)
INPUT_UNUSABLE = define(
    "PGS409",
    "An input was given but could not be used",
    Severity.WARNING,
    "The report is built without it; fix the input (path, repository kind, DSN, permissions) and run again.",
    area=AREA,
)
REFUSED_ATTEMPTS_DOUBLED = define(
    "PGS410",
    "One connect() made several refused attempts",
    Severity.INFO,
    "Each refused attempt is a server backend that briefly holds a slot and logs a FATAL: under exhaustion "
    "they add load and inflate server-log counts. sslmode=require (or disable) stops the retry; check how "
    "many addresses the database host resolves to.",
    area=AREA,
)
APP_SAW_TOO_MANY_CLIENTS = define(
    "PGS411",
    "A non-superuser application saw 'too many clients'",
    Severity.INFO,
    "Every slot was taken at that moment, the superuser-reserved ones included: superuser sessions or "
    "refused attempts in flight (each holds a slot until it is rejected) filled them.",
    area=AREA,
)
LAB_NO_IMPROVEMENT = define(
    "PGS412",
    "A remedy did not reduce failures in the lab",
    Severity.WARNING,
    "The lab measured no improvement against its baseline: do not ship it alone; read the scenario's "
    "notes (it may need another change with it).",
    area=AREA,
)
PEAK_ABOVE_BUDGET = define(
    "PGS413",
    "More client backends were observed than the audit's worst case",
    Severity.WARNING,
    "Something holds connections the budget does not count: another application, superuser or admin "
    "sessions, a process group missing from the repository, deploy overlap, or a count assumed too low "
    "(--assume). The probe's backends table says who.",
    area=AREA,
)


def _observed(text: str, path: str = "events") -> Evidence:
    return Evidence(path, None, text, Resolution.OBSERVED)


def failed_before_view(j: Joined) -> list[Finding]:
    """Joined with the audited web group (the events alone say it in their notes)."""
    web = [a for a in j.attribution if a.kind == "web" and a.before_view and a.audited]
    findings = []
    for a in web:
        names = [t.transaction for t in a.transactions if "iddleware" in t.transaction]
        findings.append(
            FAILED_BEFORE_VIEW.finding(
                f"{a.before_view} of the {a.count} failures in the {a.group} group were recorded under a middleware "
                f"({', '.join(names[:2])}): the view had not been entered yet.",
                evidence=[
                    _observed(f"transactionName {t.transaction}: {t.count} events")
                    for t in a.transactions
                    if "iddleware" in t.transaction
                ][:3],
            )
        )
    return findings


def group_not_audited(j: Joined) -> list[Finding]:
    if j.topology is None:
        return []
    return [
        GROUP_NOT_AUDITED.finding(
            f"{a.count} failures come from {a.kind} transactions, but the audited repository has no {a.kind} group.",
            evidence=[_observed(f"{t.transaction}: {t.count} events") for t in a.transactions[:3]],
        )
        for a in j.attribution
        if a.kind in ("web", "worker") and not a.audited
    ]


def peak_reached_usable(j: Joined) -> list[Finding]:
    cap = j.capacity
    if (
        cap is None
        or cap.usable is None
        or cap.observed_peak is None
        or cap.observed_peak < cap.usable
    ):
        return []
    return [
        PEAK_REACHED_USABLE.finding(
            f"Peak {cap.observed_peak} client backends ({cap.observed_basis}) against {cap.usable} usable slots ({cap.usable_basis}).",
            evidence=[
                Evidence(
                    cap.observed_basis,
                    None,
                    f"peak {cap.observed_peak} client backends",
                    Resolution.OBSERVED,
                )
            ],
        )
    ]


def budget_vs_incident(j: Joined) -> list[Finding]:
    cap = j.capacity
    if cap is None or cap.usable is None or cap.steady is None or not j.failures:
        return []
    evidence = [e for g in (j.topology.groups if j.topology else ()) for e in g.evidence[:2]]
    if cap.worst is None and not cap.worst_unbounded:
        return []  # a group the audit cannot model: the audit's PGS026 says so; no claim either way
    if cap.worst_unbounded or (cap.worst is not None and cap.worst > cap.usable):
        worst = "unbounded" if cap.worst_unbounded else str(cap.worst)
        return [
            BUDGET_EXPLAINS_INCIDENT.finding(
                f"Steady demand {cap.steady}, worst case {worst} ({cap.demand_basis}) against {cap.usable} usable slots; "
                f"{j.failures} slot-exhaustion refusals observed."
                + (
                    f" The steady demand alone fits ({cap.usable - cap.steady} to spare): the incident is the worst case."
                    if cap.steady <= cap.usable
                    else ""
                ),
                evidence=evidence,
            )
        ]
    return [
        UNEXPLAINED_EXHAUSTION.finding(
            f"The audited worst case is {cap.worst} of {cap.usable} usable slots, yet {j.failures} connections were refused.",
            evidence=evidence,
        )
    ]


def peak_above_budget(j: Joined) -> list[Finding]:
    cap = j.capacity
    if cap is None or cap.observed_peak is None or cap.worst is None or cap.worst_unbounded:
        return []
    if cap.observed_peak <= cap.worst:
        return []
    return [
        PEAK_ABOVE_BUDGET.finding(
            f"Peak {cap.observed_peak} client backends ({cap.observed_basis}), {cap.observed_peak - cap.worst} more than the "
            f"audited worst case {cap.worst} ({cap.demand_basis}).",
            evidence=[
                Evidence(
                    cap.observed_basis,
                    None,
                    f"peak {cap.observed_peak} client backends",
                    Resolution.OBSERVED,
                )
            ],
        )
    ]


def role_contradicts_wording(j: Joined) -> list[Finding]:
    reserved = j.incident.by_category.get("reserved_superuser", 0) if j.incident else 0
    if not reserved:
        return []
    findings = []
    snapshot_role = j.snapshot.role if j.snapshot else None
    if snapshot_role is not None and snapshot_role.is_superuser:
        findings.append(
            ROLE_CONTRADICTS_WORDING.finding(
                f"{reserved} events were refused with the reserved-for-superuser wording, but the probed role "
                f"{snapshot_role.name!r} is a superuser: the application connects as another role, or to another server.",
                evidence=[
                    Evidence(
                        j.snapshot.target if j.snapshot else "",
                        None,
                        f"rolsuper of {snapshot_role.name}: true",
                        Resolution.LIVE,
                    )
                ],
            )
        )
    elif j.topology is not None and j.topology.slots.role_is_superuser:
        role = j.topology.slots.role or "the audited role"
        findings.append(
            ROLE_CONTRADICTS_WORDING.finding(
                f"{reserved} events were refused with the reserved-for-superuser wording, but {role} is a superuser in "
                "the repository (superusers are never refused that way): production uses another role than the one audited.",
                evidence=j.topology.slots.role_evidence[:1],
            )
        )
    return findings


def _server_major(j: Joined) -> tuple[int | None, str, Evidence | None]:
    """(major version, where it was read, evidence): the live server first, else what the
    repository pins for the server (a compose image, a conf file)."""
    if j.snapshot is not None and j.snapshot.server_version:
        parsed = versions.first_number(j.snapshot.server_version)
        return (
            (parsed[0] if parsed else None),
            f"the probed server runs {j.snapshot.server_version}",
            Evidence(
                j.snapshot.target,
                None,
                f"server_version {j.snapshot.server_version}",
                Resolution.LIVE,
            ),
        )
    version = j.topology.slots.server_version if j.topology is not None else None
    if version is not None and version.value is not None:
        where = version.evidence[0] if version.evidence else None
        return version.value, f"the repository configures PostgreSQL {version.value}", where
    return None, "", None


def version_contradicts_wording(j: Joined) -> list[Finding]:
    wordings = j.gathered.reserved_wordings
    major, where, evidence = _server_major(j)
    if not wordings or major is None:
        return []
    findings = []
    pre16 = wordings.get("pre16", 0)
    post16 = wordings.get("16+", 0)
    proof = [evidence] if evidence else []
    if pre16 and major >= 16:
        findings.append(
            VERSION_CONTRADICTS_WORDING.finding(
                f"{pre16} events carry the PostgreSQL <= 15 wording ('non-replication superuser connections'), "
                f"but {where}.",
                evidence=proof,
            )
        )
    if post16 and major < 16:
        findings.append(
            VERSION_CONTRADICTS_WORDING.finding(
                f"{post16} events carry the PostgreSQL 16+ wording, but {where}.",
                evidence=proof,
            )
        )
    return findings


def doubled_attempts(j: Joined) -> list[Finding]:
    if j.incident is None:
        return []
    combined = {k: n for k, n in j.incident.by_combination.items() if "+" in k}
    total = sum(combined.values())
    if not total:
        return []
    fact = (
        versions.find(j.topology.versions, "psycopg", "psycopg-binary")
        if j.topology is not None
        else None
    )
    if fact is None:
        return []  # the events' own notes explain the double refusals; the join adds the driver's version
    retry = (
        "libpq with sslmode=prefer (its default) retries without SSL when the server refuses before "
        "authentication ('sorry, too many clients already'), keeping both errors; the retry then met the "
        "reserved-slot check"
    )
    psycopg = versions.lower_bound((fact,), fact.package)
    if psycopg and psycopg < (3, 1, 13):
        why = f"psycopg {versions.written(fact)} ({fact.evidence.location()}) makes one libpq attempt per host, so the second wording came from libpq itself: {retry}"
    elif psycopg and psycopg < (3, 2, 8):
        why = f"psycopg {versions.written(fact)} ({fact.evidence.location()}) reports only its last address's error, so the second wording came from libpq itself: {retry}"
    elif psycopg:
        why = f"psycopg {versions.written(fact)} tries every address the host resolves to and reports all attempts; or {retry}"
    else:
        why = f"either psycopg >= 3.2.8 tried several addresses, or {retry}"
    return [
        REFUSED_ATTEMPTS_DOUBLED.finding(
            f"{total} events carry two refusal wordings in one message: {why}. Each of those connect() calls cost "
            "the server at least two backends.",
            evidence=[_observed(f"{n} events with {k}") for k, n in combined.items()],
        )
    ]


def app_saw_too_many_clients(j: Joined) -> list[Finding]:
    if j.incident is None:
        return []
    too_many = j.incident.by_category.get("too_many_clients", 0)
    reserved = j.incident.by_category.get("reserved_superuser", 0) + j.incident.by_category.get(
        "reserved_role", 0
    )
    if not too_many or not reserved:
        return []
    return [
        APP_SAW_TOO_MANY_CLIENTS.finding(
            f"The same application was refused {reserved} times as a non-superuser (reserved-slot wording) and "
            f"{too_many} times with 'sorry, too many clients already': at those moments not even the reserved slots were free.",
            evidence=[_observed(f"{too_many} events too_many_clients, {reserved} reserved")],
        )
    ]


def windows_disagree(j: Joined) -> list[Finding]:
    incident = j.incident
    watch = j.gathered.watch
    if (
        incident is None
        or not watch
        or incident.window_start is None
        or incident.window_end is None
    ):
        return []
    start, end = min(s.taken_at for s in watch), max(s.taken_at for s in watch)
    if start <= incident.window_end and end >= incident.window_start:
        return []
    offset = (incident.window_start - start).total_seconds()
    hours = offset / 3600
    whole = abs(hours - round(hours)) < 0.05 and 0 < abs(round(hours)) <= 14
    message = (
        f"The watch record covers {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC, the events {incident.window_start:%Y-%m-%d %H:%M}-"
        f"{incident.window_end:%H:%M} UTC: they do not overlap, so its peak is not the incident's."
    )
    if whole:
        message += f" They are {abs(round(hours))} h apart: one of them was probably written in local time."
    return [
        WINDOWS_DISAGREE.finding(
            message, evidence=[_observed("watch record window", j.gathered.watch_path)]
        )
    ]


def inputs_unusable(j: Joined) -> list[Finding]:
    return [
        INPUT_UNUSABLE.finding(
            f"{s.kind}: {s.detail}",
            evidence=[Evidence(s.kind, None, s.detail, Resolution.OBSERVED)],
        )
        for s in j.gathered.unusable()
    ]


def lab_no_improvement(j: Joined) -> list[Finding]:
    return [
        LAB_NO_IMPROVEMENT.finding(
            f"{code}: {m.failed_requests} failed requests in {m.scenario} vs {m.baseline_failed_requests} at baseline ({m.run_dir}).",
            evidence=[Evidence(m.run_dir, None, f"scenario {m.scenario}", Resolution.OBSERVED)],
        )
        for code, m in j.gathered.measured.items()
        if m.baseline_failed_requests and m.failed_requests >= m.baseline_failed_requests
    ]


RULES: tuple[Callable[[Joined], list[Finding]], ...] = (
    inputs_unusable,
    peak_reached_usable,
    budget_vs_incident,
    peak_above_budget,
    failed_before_view,
    group_not_audited,
    role_contradicts_wording,
    version_contradicts_wording,
    windows_disagree,
    lab_no_improvement,
    app_saw_too_many_clients,
    doubled_attempts,
)


def run(j: Joined) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(j)]
