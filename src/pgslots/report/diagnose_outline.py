"""The diagnosis report's content, once, as sections of paragraphs, lists and tables.

The markdown, HTML and terminal renderers all format this outline, so the three say the
same thing in the same order: the write-up's own structure (Observation, Interpretation,
Contributors (verified), What we still need to verify, Directions ordered by effort and
risk), then the budget and the inputs. Text carries two inline marks only, `code` and
**bold**, which each renderer turns into its own markup.

This module formats numbers the `Diagnosis` already holds; it decides nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from pgslots.diagnosis import Diagnosis, RemedyAssessment, VerificationItem
from pgslots.events.model import Incident
from pgslots.evidence import Evidence
from pgslots.findings import Finding, Severity
from pgslots.remedy import Remedy


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    ordered: bool = False


@dataclasses.dataclass(frozen=True)
class Checklist:
    items: tuple[tuple[bool, str], ...]  # (done, text)


@dataclasses.dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[int, ...] = ()  # right-aligned column indexes


@dataclasses.dataclass(frozen=True)
class Figure:
    """Where a chart goes (HTML); `missing` says what would draw it when it cannot be drawn."""

    key: str
    missing: str = ""


Block = Paragraph | Bullets | Checklist | Table | Figure


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...]


@dataclasses.dataclass(frozen=True)
class FirstStep:
    """The "Do this first" box: the first ranked remedy, its exact change, its effect
    (measured when a lab run measured it, else predicted), and, when it does not fit the
    slots on its own, the first ranked remedy that does."""

    remedy: str
    change: str
    effect: str
    then: str = ""


@dataclasses.dataclass(frozen=True)
class Outline:
    title: str
    headline: str
    sections: tuple[Section, ...]
    first: FirstStep | None = None


def code(text: object) -> str:
    """An inline code span; a backtick inside would end it early, so it becomes a quote."""
    return f"`{str(text).replace('`', chr(39))}`"


def when(ts: dt.datetime | None, *, date: bool = True, seconds: bool = False) -> str:
    if ts is None:
        return "?"
    ts = ts.astimezone(dt.timezone.utc)
    clock = f"{ts:%H:%M:%S}" if seconds else f"{ts:%H:%M}"
    return f"{ts:%Y-%m-%d} {clock} UTC" if date else clock


def demand(steady: int | None, worst: int | None, unbounded: bool | None = None) -> str:
    if unbounded is None:
        unbounded = worst is None
    top = "unbounded" if unbounded else "unknown" if worst is None else str(worst)
    low = "?" if steady is None else str(steady)
    return low if top == low else f"{low} .. {top}"


def evidence_text(items: Iterable[Evidence], limit: int = 3) -> str:
    items = list(items)
    shown = [
        f"{code(e.location())} {code(_clip(e.text))}"
        + (f" ({e.resolution.value})" if e.resolution.value != "literal" else "")
        for e in items[:limit]
    ]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(shown) + more


def _clip(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %" if share < 0.995 else f"{share * 100:.0f} %"


# -- sections -------------------------------------------------------------------------------


def build(diagnosis: Diagnosis) -> Outline:
    sections = [
        _observation(diagnosis),
        _interpretation(diagnosis),
        _contributors(diagnosis),
        _budget(diagnosis),
        _verification(diagnosis),
        _directions(diagnosis),
        _inputs(diagnosis),
    ]
    return Outline(
        title=title(diagnosis),
        headline=diagnosis.headline,
        sections=tuple(s for s in sections if s is not None),
        first=first_step(diagnosis),
    )


def first_step(diagnosis: Diagnosis) -> FirstStep | None:
    """What to do first, from the ranking (nothing is chosen here that the ranking did not)."""
    if not diagnosis.remedies:
        return None
    assessed = {a.code: a for a in diagnosis.assessments}
    first = diagnosis.remedies[0]
    then = ""
    reading = assessed.get(first.code)
    if reading is None or reading.fits is not True:
        fitting = next(
            (
                r
                for r in diagnosis.remedies[1:]
                if (a := assessed.get(r.code)) is not None and a.fits
            ),
            None,
        )
        if fitting is not None:
            then = (
                f"Then, to fit the slots: **{fitting.code} {fitting.title}**: {fitting.change}. "
                f"{_effect(fitting, assessed.get(fitting.code))}"
            )
    return FirstStep(f"{first.code} {first.title}", first.change, _effect(first, reading), then)


def _effect(remedy: Remedy, assessment: RemedyAssessment | None) -> str:
    """The measured effect when the lab measured one, else the budget model's prediction."""
    parts = []
    if remedy.measured is not None:
        m = remedy.measured
        parts.append(
            f"Measured in the lab ({code(m.scenario)}): **{m.failed_requests}** failed requests vs "
            f"{m.baseline_failed_requests} at baseline."
        )
    if remedy.predicted is not None:
        parts.append(
            f"Predicted demand after it: **{demand(remedy.predicted.steady, remedy.predicted.worst)}** connections."
        )
    if assessment is not None and assessment.verdict:
        parts.append(assessment.verdict[0].upper() + assessment.verdict[1:] + ".")
    return " ".join(parts)


def title(diagnosis: Diagnosis) -> str:
    incident = diagnosis.incident
    if incident and incident.total and incident.window_start:
        return f"Connection-slot exhaustion, {when(incident.window_start)}: {incident.total} failed connections"
    if diagnosis.topology is not None:
        return "Connection-slot budget of the deployment"
    return "pgslots diagnosis"


def _observation(diagnosis: Diagnosis) -> Section:
    incident = diagnosis.incident
    blocks: list[Block] = []
    if incident is None or incident.total == 0:
        reason = (
            "no events were given"
            if incident is None
            else "the events given hold no connection failure"
        )
        blocks.append(
            Paragraph(f"No error events observed ({reason}). " + _missing_adds(diagnosis, "events"))
        )
    else:
        blocks += _incident_blocks(incident, diagnosis)
    if diagnosis.backends or diagnosis.snapshot is not None:
        blocks += _backends_blocks(diagnosis)
    else:
        blocks.append(
            Figure("backends-over-time", missing=_missing_adds(diagnosis, "watch-record"))
        )
    return Section("observation", "Observation", tuple(blocks))


def _incident_blocks(incident: Incident, diagnosis: Diagnosis) -> list[Block]:
    classes = incident.facets.get("error_class", ())
    klass = f" {code(classes[0].value)}" if len(classes) == 1 else ""
    end = incident.window_end
    fine = bool(incident.bucket_seconds % 60)
    span = (
        f"From {when(incident.window_start, seconds=fine)[:-4]} to {when(end, date=False, seconds=fine)} UTC"
        if end
        else f"At {when(incident.window_start, seconds=fine)}"
    )
    sources = ", ".join(code(i.path) for i in incident.inputs) or "the events given"
    blocks: list[Block] = [
        Paragraph(
            f"{span}, {sources} recorded **{incident.total}**{klass} connection failures "
            f"({bucket_size(incident.bucket_seconds)} buckets):"
        )
    ]
    nonzero = [b for b in incident.buckets if b.total]
    # Columns by message family when the buckets have them (each event once: rows add up),
    # else by category (an event with two wordings counts in both).
    by_family = all(b.by_combination for b in nonzero)
    columns = list(incident.by_combination if by_family else incident.by_category)
    rows = tuple(
        (
            when(b.start, date=False, seconds=fine),
            str(b.total),
            *(str((b.by_combination if by_family else b.by_category).get(c, 0)) for c in columns),
        )
        for b in nonzero
    )
    headers = tuple(c.replace("+", " + ") for c in columns)
    blocks.append(
        Table(
            ("bucket start (UTC)", "failures", *headers),
            rows,
            numeric=tuple(range(1, 2 + len(columns))),
        )
    )
    quiet = len(incident.buckets) - len(nonzero)
    if quiet:
        blocks.append(Paragraph(f"The other {quiet} buckets of the window had no failure."))
    if incident.shape is not None:
        counts = " → ".join(str(c) for c in incident.shape.counts)
        rule = incident.shape.rule.rstrip(".")
        shown = (
            rule if counts in rule else f"{counts} per bucket; read from the event times, {rule}"
        )
        blocks.append(Paragraph(f"Curve: **{incident.shape.label.replace('_', ' ')}**: {shown}."))
    blocks.append(Paragraph("Messages (each event once, by the wordings it carries):"))
    combos = sorted(incident.by_combination.items(), key=lambda kv: -kv[1])
    blocks.append(Bullets(tuple(f"{n} × {_combination(key)}" for key, n in combos)))
    transactions = incident.facets.get("transaction", ())
    if transactions:
        group_of = {t.transaction: a.group for a in diagnosis.attribution for t in a.transactions}
        rows = tuple(
            (code(t.value), str(t.count), _pct(t.share), group_of.get(t.value, "?"))
            for t in transactions
        )
        blocks.append(Paragraph("By transaction, and the process group each maps to:"))
        blocks.append(
            Table(("transaction", "events", "share", "process group"), rows, numeric=(1, 2))
        )
    blocks.extend(
        Paragraph(f"{code(note.path)}: {note.skipped} malformed records skipped of {note.records}.")
        for note in incident.inputs
        if note.skipped
    )
    if incident.timezone_note:
        blocks.append(Paragraph(incident.timezone_note))
    if diagnosis.sources:
        blocks.append(Paragraph(sources_sentence(diagnosis)))
    blocks.append(Figure("errors-over-time"))
    return blocks


def sources_sentence(diagnosis: Diagnosis) -> str:
    """One incident seen from several sources: whose count the report gives, and how the
    others agree with it (`diagnose.sources`)."""
    return (
        "One incident, several sources: the count is the one closest to the application; "
        + " ".join(s.text for s in diagnosis.sources)
    )


def bucket_size(seconds: int) -> str:
    """ "5-minute", "2-second": the buckets' size as an adjective."""
    return f"{seconds // 60}-minute" if seconds >= 60 and seconds % 60 == 0 else f"{seconds}-second"


def _combination(key: str) -> str:
    parts = key.split("+")
    if len(parts) == 1:
        return (
            f"{code(key)} only"
            if key != "other"
            else f"{code('other')} (not a slot-exhaustion wording)"
        )
    return " and ".join(code(p) for p in parts) + " in the same message"


def _backends_blocks(diagnosis: Diagnosis) -> list[Block]:
    blocks: list[Block] = []
    rows = []
    for series in diagnosis.backends:
        at = f" at {when(series.peak_at)}" if series.peak_at else ""
        rows.append(
            (
                series.source,
                code(series.path),
                str(len(series.points)),
                f"{series.peak}{at}" if series.peak is not None else "?",
            )
        )
    if rows:
        blocks.append(Paragraph("Client backends observed:"))
        blocks.append(Table(("source", "from", "points", "peak"), tuple(rows), numeric=(2,)))
    blocks.append(
        Figure(
            "backends-over-time",
            missing="" if diagnosis.backends else _missing_adds(diagnosis, "watch-record"),
        )
    )
    bouncer = diagnosis.snapshot.pgbouncer if diagnosis.snapshot is not None else None
    if bouncer is not None:
        capacity = (
            f"; it may open **{bouncer.server_side_capacity}** server connections ({bouncer.server_side_capacity_formula})"
            if bouncer.server_side_capacity is not None
            else ""
        )
        blocks.append(
            Paragraph(
                f"pgbouncer ({code(bouncer.target)}): {len(bouncer.pools)} pools, {bouncer.clients_waiting} clients waiting "
                f"(the oldest for {bouncer.maxwait_seconds:.1f} s), {bouncer.server_connections} server connections{capacity}."
            )
        )
    return blocks


def _interpretation(diagnosis: Diagnosis) -> Section:
    items = []
    for statement in diagnosis.interpretation:
        mark = "" if statement.verified else " *(inference: to confirm)*"
        basis = f" ({'; '.join(statement.basis)})" if statement.basis else ""
        items.append(f"{statement.text}{basis}{mark}")
    if diagnosis.attribution:
        for a in diagnosis.attribution:
            before = f", {a.before_view} of them before the view ran" if a.before_view else ""
            target = (
                f"the {a.kind} group **{a.group}**"
                if a.group != a.kind
                else f"the **{a.kind}** group"
            )
            if a.kind == "unattributed":
                target = "no process group"
            items.append(
                f"**{a.count}** events ({_pct(a.share)}) map to {target}{before}: {a.rule}."
            )
    blocks: tuple[Block, ...] = (
        (Bullets(tuple(items)),)
        if items
        else (Paragraph("Nothing to interpret without events or a repository."),)
    )
    return Section("interpretation", "Interpretation", blocks)


def _finding_line(finding: Finding) -> str:
    text = f"**{finding.code}** {finding.title}: {finding.message}"
    if finding.evidence:
        text += f" Evidence: {evidence_text(finding.evidence)}."
    if finding.remedies:
        text += f" Remedies: {', '.join(finding.remedies)}."
    return text


def _contributors(diagnosis: Diagnosis) -> Section:
    verified = [f for f in diagnosis.findings if f.severity is not Severity.INFO and f.evidence]
    unproven = [f for f in diagnosis.findings if f.severity is not Severity.INFO and not f.evidence]
    info = [f for f in diagnosis.findings if f.severity is Severity.INFO]
    blocks: list[Block] = []
    if verified:
        blocks.append(Bullets(tuple(_finding_line(f) for f in verified)))
    else:
        blocks.append(
            Paragraph(
                "No contributor could be verified from the inputs given. "
                + _missing_adds(diagnosis, "repo")
            )
        )
    if unproven:
        blocks.append(Paragraph("Also reported, without a file or log line to prove it:"))
        blocks.append(Bullets(tuple(_finding_line(f) for f in unproven)))
    if diagnosis.in_place:
        blocks.append(Paragraph("Already in place, so not proposed again:"))
        blocks.append(
            Bullets(
                tuple(
                    f"{code(p.setting)} ({evidence_text(p.evidence, limit=2)}): {p.consequence}"
                    for p in diagnosis.in_place
                )
            )
        )
    if info:
        blocks.append(Paragraph("For information:"))
        blocks.append(Bullets(tuple(_finding_line(f) for f in info)))
    return Section("contributors", "Contributors (verified)", tuple(blocks))


def _budget(diagnosis: Diagnosis) -> Section | None:
    capacity = diagnosis.capacity
    if not diagnosis.budget and capacity is None:
        return Section(
            "budget",
            "The connection budget",
            (
                Paragraph(
                    "No budget without a repository. " + _missing_adds(diagnosis, "repo") + "."
                ),
                Figure(
                    "budget-per-group",
                    missing="the budget chart needs the repository (`--repo PATH`)",
                ),
            ),
        )
    blocks: list[Block] = []
    if diagnosis.budget:
        rows = tuple(
            (
                g.group,
                g.server_model,
                g.conn_max_age,
                demand(g.steady, g.worst, g.bound == "unbounded" if g.worst is None else False),
                g.formula,
            )
            for g in diagnosis.budget
        )
        blocks.append(
            Table(
                (
                    "process group",
                    "server model",
                    "CONN_MAX_AGE",
                    "connections (steady .. worst)",
                    "arithmetic",
                ),
                rows,
            )
        )
    if capacity is not None:
        lines = []
        if capacity.usable is not None:
            assumed = ", assumed" if capacity.usable_assumed else ""
            lines.append(
                f"Usable slots for the application role: **{capacity.usable}**{assumed} ({capacity.usable_basis})."
            )
        else:
            lines.append(f"Usable slots unknown ({capacity.usable_basis}).")
        if capacity.steady is not None:
            lines.append(
                f"Audited demand: **{demand(capacity.steady, capacity.worst, capacity.worst_unbounded)}** ({capacity.demand_basis})."
            )
        if capacity.observed_peak is not None:
            lines.append(
                f"Observed peak: **{capacity.observed_peak}** client backends ({capacity.observed_basis})."
            )
        blocks.append(Bullets(tuple(lines)))
    unknowns = diagnosis.topology.unknowns if diagnosis.topology else ()
    if unknowns:
        blocks.append(Paragraph("Counts the repository cannot show (settable with `--assume`):"))
        blocks.append(
            Bullets(
                tuple(
                    f"{code(u.name)}: {u.question} "
                    + (
                        f"assumed {u.assumed}"
                        if u.assumed is not None
                        else f"floor {u.floor_value} used"
                    )
                    + (
                        f"; each extra unit adds {u.adds_per_unit} connections at worst"
                        if u.adds_per_unit
                        else ""
                    )
                    for u in unknowns
                )
            )
        )
    if diagnosis.assumptions:
        blocks.append(
            Paragraph(
                "Assumed on the command line: "
                + ", ".join(code(f"{k}={v}") for k, v in sorted(diagnosis.assumptions.items()))
                + "."
            )
        )
    blocks.append(
        Figure(
            "budget-per-group", missing="" if diagnosis.budget else _missing_adds(diagnosis, "repo")
        )
    )
    return Section("budget", "The connection budget", tuple(blocks))


def verification_line(item: VerificationItem) -> str:
    if item.settled:
        evidence = f" ({'; '.join(item.evidence)})" if item.evidence else ""
        return f"{item.question} **{item.answer}**{evidence}"
    return (
        f"{item.question} To settle: {item.how_to_settle}" if item.how_to_settle else item.question
    )


def _verification(diagnosis: Diagnosis) -> Section:
    items = diagnosis.verification
    if not items:
        return Section(
            "verification", "What we still need to verify", (Paragraph("Nothing left open."),)
        )
    ordered = [i for i in items if not i.settled] + [i for i in items if i.settled]
    settled = sum(1 for i in items if i.settled)
    return Section(
        "verification",
        "What we still need to verify",
        (
            Paragraph(
                f"{settled} of {len(items)} settled from the evidence; the rest with the command or file given."
            ),
            Checklist(tuple((i.settled, verification_line(i)) for i in ordered)),
        ),
    )


def remedy_line(remedy: Remedy, assessment: RemedyAssessment | None = None) -> str:
    parts = [
        f"**{remedy.code} {remedy.title}** (effort {remedy.effort}/5, risk {remedy.risk}/5). {remedy.summary}"
    ]
    if remedy.change:
        parts.append(f"Change: {remedy.change}.")
    if remedy.predicted is not None:
        basis = f" ({remedy.predicted_basis})" if remedy.predicted_basis else ""
        parts.append(
            f"Predicted demand after it: **{demand(remedy.predicted.steady, remedy.predicted.worst)}** connections{basis}."
        )
    if remedy.measured is not None:
        m = remedy.measured
        parts.append(
            f"Measured in the lab ({code(m.scenario)}): **{m.failed_requests}** failed requests vs "
            f"{m.baseline_failed_requests} at baseline, peak {m.peak_backends} client backends vs "
            f"{m.baseline_peak_backends} ({m.note})."
        )
    if assessment is not None:
        parts.append(f"Reading: {assessment.verdict}.")
    if remedy.caveats:
        parts.append("Caveats: " + " ".join(remedy.caveats))
    return " ".join(parts)


def _directions(diagnosis: Diagnosis) -> Section:
    blocks: list[Block] = []
    assessed = {a.code: a for a in diagnosis.assessments}
    if diagnosis.remedies:
        blocks.append(
            Bullets(
                tuple(remedy_line(r, assessed.get(r.code)) for r in diagnosis.remedies),
                ordered=True,
            )
        )
        if diagnosis.lab is None:
            blocks.append(Paragraph("No lab run: " + _missing_adds(diagnosis, "lab-run")))
        else:
            blocks += _lab_blocks(diagnosis)
    else:
        blocks.append(
            Paragraph(
                "No remedy to propose without a repository. "
                + _missing_adds(diagnosis, "repo")
                + "."
            )
        )
    if diagnosis.withheld:
        blocks.append(Paragraph("Not proposed:"))
        blocks.append(Bullets(diagnosis.withheld))
    blocks.append(
        Figure(
            "remedy-comparison",
            missing=""
            if diagnosis.remedies or diagnosis.lab
            else "the remedy chart needs the repository (`--repo PATH`) or a lab run (`--lab-run DIR`)",
        )
    )
    return Section("directions", "Directions (ordered by effort and risk)", tuple(blocks))


def _lab_blocks(diagnosis: Diagnosis) -> list[Block]:
    lab = diagnosis.lab
    assert lab is not None
    rows = tuple(
        (
            code(s.name),
            s.remedy or ("baseline" if s.name == lab.baseline else "-"),
            f"{s.failed_requests}/{s.requests}"
            if s.requests is not None
            else str(s.failed_requests),
            "?" if s.peak_backends is None else str(s.peak_backends),
            s.note,
        )
        for s in lab.scenarios
    )
    usable = f" against {lab.usable} usable slots" if lab.usable is not None else ""
    return [
        Paragraph(
            f"Measured in the lab run {code(lab.path)}, at the lab's scale{usable} (compare each remedy with "
            "the baseline of the same run, not with production counts):"
        ),
        Table(
            (
                "scenario",
                "remedy",
                "failed requests",
                "peak backends",
                "what changed / after the burst",
            ),
            rows,
            numeric=(2, 3),
        ),
    ]


def _inputs(diagnosis: Diagnosis) -> Section:
    rows = []
    for status in diagnosis.inputs:
        state = (
            "used"
            if status.given and status.ok
            else ("given, not usable" if status.given else "not given")
        )
        text = status.detail if status.given else status.adds
        rows.append((status.kind, state, text))
    blocks: list[Block] = [Table(("input", "status", "read / what it would add"), tuple(rows))]
    if diagnosis.notes:
        blocks.append(Bullets(diagnosis.notes))
    return Section("inputs", "Inputs", tuple(blocks))


def _missing_adds(diagnosis: Diagnosis, kind: str) -> str:
    for status in diagnosis.inputs:
        if status.kind == kind:
            if status.given and not status.ok:
                return f"The {kind} input could not be used: {status.detail}"
            if not status.given:
                return status.adds
    return ""
