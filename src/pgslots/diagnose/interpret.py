"""The interpretation: what the joined evidence says, sentence by sentence, each marked as
proven by the inputs or as an inference to confirm.

This is where the write-up's reasoning is redone with the evidence it lacked (domain
reference §7.3): processes are not connections, a setting that is "already 60" can be the
leak, 97 usable slots are an assumption until the server says so, and the refusal wording
itself tells the role and the server generation.
"""

from __future__ import annotations

from pgslots.diagnose.context import Joined
from pgslots.diagnose.inplace import is_asgi
from pgslots.diagnosis import Statement
from pgslots.remedy import Mechanism


def _events_notes(j: Joined) -> list[Statement]:
    """The events pipeline's own reading of the messages and transaction names."""
    incident = j.incident
    if incident is None:
        return []
    return [Statement(note.key, note.text) for note in incident.notes if note.key != "no_events"]


def _shape(j: Joined) -> list[Statement]:
    """The curve's shape is in the observation; here only what the join adds to it."""
    incident = j.incident
    if incident is None or incident.shape is None:
        return []
    leaking = [
        p
        for p in j.in_place
        if p.mechanism is Mechanism.PERSISTENT_CONNECTIONS and "leaks" in p.consequence
    ]
    if incident.shape.label not in ("sustained_growth", "plateau") or not leaking:
        return []
    return [
        Statement(
            "shape_matches_leak",
            f"A {incident.shape.label.replace('_', ' ')} curve is what {leaking[0].setting} under ASGI produces: each "
            "burst of requests leaves its connections open until garbage collection, so the web group's holdings climb "
            "burst after burst and outlive the load.",
            tuple(e.location() for e in leaking[0].evidence[:1]),
            verified=False,
        )
    ]


def _wording(j: Joined) -> list[Statement]:
    """The generation of the reserved-slot wording, joined with the probe's version when there
    is one (the events pipeline already states the wording alone)."""
    wordings = j.gathered.reserved_wordings
    incident = j.incident
    if incident is None:
        return []
    said = any(n.key.startswith("reserved_wording_") for n in incident.notes)
    version = j.snapshot.server_version if j.snapshot else None
    pre16, post16 = wordings.get("pre16", 0), wordings.get("16+", 0)
    if version and (pre16 or post16):
        generation = "PostgreSQL 15 or older" if pre16 else "PostgreSQL 16 or newer"
        return [
            Statement(
                "reserved_wording_vs_server",
                f"The refusal wording says {generation}; the probed server runs {version}.",
                (f"{pre16 or post16} events",),
            )
        ]
    if said:
        return []
    if pre16:
        return [
            Statement(
                "reserved_wording",
                f"{pre16} events carry PostgreSQL's pre-16 wording (\"reserved for non-replication superuser "
                "connections\"): the server ran PostgreSQL 15 or older, and the application's role is not a superuser, "
                "since superusers are never refused that way.",
            )
        ]
    if post16:
        return [
            Statement(
                "reserved_wording",
                f"{post16} events carry PostgreSQL 16+'s wording: the server runs 16 or newer, so reserved_connections "
                "may take further slots from the application (SHOW reserved_connections).",
            )
        ]
    reserved = incident.by_category.get("reserved_superuser", 0)
    if reserved:
        return [
            Statement(
                "reserved_wording",
                f"{reserved} events were refused by the reserved-slot check: the application's role is not a superuser.",
            )
        ]
    return []


def _supply_and_demand(j: Joined) -> list[Statement]:
    cap = j.capacity
    topology = j.topology
    if cap is None or topology is None or cap.steady is None:
        return []
    statements = []
    web_asgi = [g for g in topology.groups if g.kind == "web" and is_asgi(g)]
    processes = sum(
        (g.hosts.value or 1) * (g.processes.value or 1)
        for g in topology.groups
        if g.concurrency_model != "none"
    )
    if web_asgi:
        statements.append(
            Statement(
                "processes_are_not_connections",
                f"Counting processes ({processes} across all groups) undercounts: under ASGI every in-flight request "
                "holds its own connection, and nothing bounds the in-flight requests per worker unless the server sets "
                "a concurrency limit"
                + (
                    ", which it does not"
                    if all(g.per_process.value is None for g in web_asgi)
                    else ""
                )
                + ".",
                tuple(e.location() for g in web_asgi for e in g.evidence[:1]),
            )
        )
    if cap.usable is not None:
        worst = (
            "unbounded"
            if cap.worst_unbounded
            else "unknown"
            if cap.worst is None
            else str(cap.worst)
        )
        fits_steady = cap.steady <= cap.usable
        statements.append(
            Statement(
                "budget",
                f"The audited budget is {cap.steady} connections steady and {worst} at worst, against {cap.usable} usable "
                f"slots: "
                + (
                    "even the steady load does not fit."
                    if not fits_steady
                    else "the worst case is unknown: a group the audit cannot model (--assume its counts)."
                    if worst == "unknown"
                    else "the steady load fits, the worst case does not."
                    if cap.worst_unbounded or (cap.worst or 0) > cap.usable
                    else "it fits."
                ),
                (cap.usable_basis,),
            )
        )
    return statements


def _peaks(j: Joined) -> list[Statement]:
    cap = j.capacity
    if cap is None or cap.observed_peak is None:
        return []
    text = f"Observed peak: {cap.observed_peak} client backends ({cap.observed_basis})"
    if cap.usable is not None:
        text += f", against {cap.usable} usable slots"
    if cap.steady is not None:
        worst = (
            "unbounded" if cap.worst_unbounded else "unknown" if cap.worst is None else cap.worst
        )
        text += f" and an audited demand of {cap.steady}..{worst}"
    return [Statement("observed_peak", text + ".")]


def interpret(j: Joined) -> tuple[Statement, ...]:
    return tuple(_events_notes(j) + _shape(j) + _wording(j) + _supply_and_demand(j) + _peaks(j))


def headline(j: Joined) -> str:
    incident = j.incident
    cap = j.capacity
    parts = []
    if incident is not None and incident.total:
        main = max(j.attribution, key=lambda a: a.count) if j.attribution else None
        parts.append(
            f"{incident.total} connection failures"
            + (
                f", {main.count} of them in the {main.group} group"
                if main and main.kind != "unattributed"
                else ""
            )
            + (f", {incident.shape.label.replace('_', ' ')}" if incident.shape else "")
        )
    if cap is not None and cap.usable is not None and cap.steady is not None:
        worst = (
            "unbounded"
            if cap.worst_unbounded
            else "unknown"
            if cap.worst is None
            else str(cap.worst)
        )
        assumed = " (assumed: PostgreSQL's default max_connections)" if cap.usable_assumed else ""
        parts.append(
            f"demand {cap.steady}..{worst} connections against {cap.usable} usable slots{assumed}"
        )
    leaking = [p for p in j.in_place if "leaks" in p.consequence]
    if leaking:
        parts.append(f"{leaking[0].setting} is already set and leaks under ASGI")
    if not parts:
        return "Not enough input to diagnose: see Inputs for what each one would add."
    return "; ".join(parts) + "."
