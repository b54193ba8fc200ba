"""`diagnose` on the terminal: a one-screen summary of the write-up.

Headline, what was observed, the findings one line each, what is already in place, the
directions with their predicted demand, how many checks are settled and which are still
open, and which inputs would add what. Plain text (no colour codes) so it reads the same in
a terminal, a pipe and a CI log; every line points to the full write-up for its evidence
(`--format markdown`, or `--format html` with the charts).
"""

from __future__ import annotations

import textwrap

from pgslots.diagnosis import Diagnosis
from pgslots.report.diagnose_outline import bucket_size, demand, sources_sentence, title, when

WIDTH = 100
OPEN_CHECKS_SHOWN = 4


def _wrap(text: str, first: str = "", rest: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest if rest is not None else " " * len(first),
        break_on_hyphens=False,
        break_long_words=False,
    ) or [first.rstrip()]


def _heading(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def _observation(d: Diagnosis) -> list[str]:
    incident = d.incident
    if incident is None or not incident.total:
        return _wrap(
            "No error events given."
            if incident is None
            else "The events hold no connection failure."
        )
    fine = bool(incident.bucket_seconds % 60)
    end = (
        f" to {when(incident.window_end, date=False, seconds=fine)} UTC"
        if incident.window_end
        else ""
    )
    lines = _wrap(
        f"{incident.total} connection failures from {when(incident.window_start, seconds=fine)[:-4]}{end}, "
        f"per {bucket_size(incident.bucket_seconds)} bucket: "
        + " → ".join(str(b.total) for b in incident.buckets if b.total)
        + (f" ({incident.shape.label.replace('_', ' ')})" if incident.shape else "")
    )
    families = ", ".join(
        f"{n} {key.replace('+', ' + ')}"
        for key, n in sorted(incident.by_combination.items(), key=lambda kv: -kv[1])
    )
    lines += _wrap(f"Messages: {families}.")
    if d.sources:
        lines += _wrap(sources_sentence(d))
    for a in d.attribution:
        before = f", {a.before_view} before the view ran" if a.before_view else ""
        target = a.group if a.group == a.kind else f"{a.kind} group {a.group}"
        lines += _wrap(f"{a.count} in {target}{before}", "  ")
    return lines


def _findings(d: Diagnosis) -> list[str]:
    lines: list[str] = []
    for f in d.findings:
        lines += _wrap(f"{f.code} {f.severity.value:<7} {f.title}", "", " " * 16)
    return lines or ["No finding."]


def _capacity(d: Diagnosis) -> list[str]:
    cap = d.capacity
    if cap is None:
        return []
    parts = []
    if cap.usable is not None:
        parts.append(
            f"usable slots {cap.usable}"
            + (" (assumed: PostgreSQL's default max_connections)" if cap.usable_assumed else "")
        )
    if cap.steady is not None:
        parts.append(f"audited demand {demand(cap.steady, cap.worst, cap.worst_unbounded)}")
    if cap.observed_peak is not None:
        parts.append(f"observed peak {cap.observed_peak} backends ({cap.observed_basis})")
    return _wrap("Slots: " + "; ".join(parts) + ".") if parts else []


def _directions(d: Diagnosis) -> list[str]:
    verdicts = {a.code: a.verdict for a in d.assessments}
    lines: list[str] = []
    for i, r in enumerate(d.remedies, 1):
        predicted = (
            f"; predicted {demand(r.predicted.steady, r.predicted.worst)}" if r.predicted else ""
        )
        measured = (
            f"; lab: {r.measured.failed_requests} failed requests vs {r.measured.baseline_failed_requests} "
            "at baseline"
            if r.measured
            else ""
        )
        lines += _wrap(
            f"{r.code} {r.title} (effort {r.effort}, risk {r.risk}){predicted}{measured}",
            f"{i}. ",
            "   ",
        )
        if r.code in verdicts:
            lines += _wrap(verdicts[r.code], "   ")
    for p in d.in_place:
        where = p.evidence[0].location() if p.evidence else "?"
        lines += _wrap(
            f"Not proposed, already set: {p.setting} ({where}): {p.summary or p.consequence}.",
            "- ",
            "  ",
        )
    return lines or ["No remedy to propose (give --repo)."]


def _checks(d: Diagnosis) -> list[str]:
    items = d.verification
    if not items:
        return []
    open_items = [i for i in items if not i.settled]
    lines = [
        f"{len(items) - len(open_items)} of {len(items)} checks settled from the evidence; still open:"
    ]
    for item in open_items[:OPEN_CHECKS_SHOWN]:
        lines += _wrap(item.question, "[ ] ")
    if len(open_items) > OPEN_CHECKS_SHOWN:
        lines.append(
            f"    ... and {len(open_items) - OPEN_CHECKS_SHOWN} more (with the exact commands in --format markdown)"
        )
    return lines


def _inputs(d: Diagnosis) -> list[str]:
    lines: list[str] = []
    for s in d.inputs:
        if s.given and not s.ok:
            lines += _wrap(f"{s.kind}: not usable: {s.detail}", "! ")
    missing = [s for s in d.inputs if not s.given]
    for s in missing:
        lines += _wrap(s.adds.replace("`", ""), "+ ")
    return lines


def render(diagnosis: Diagnosis) -> str:
    heading = title(diagnosis)
    out = [heading, "=" * min(WIDTH, len(heading))]
    if diagnosis.headline:
        out += _wrap(diagnosis.headline)
    out += _heading("Observed") + _observation(diagnosis) + _capacity(diagnosis)
    out += _heading("Findings") + _findings(diagnosis)
    out += _heading("Directions (by effort and risk)") + _directions(diagnosis)
    checks = _checks(diagnosis)
    if checks:
        out += _heading("Still to verify") + checks
    inputs = _inputs(diagnosis)
    if inputs:
        out += _heading("Inputs") + inputs
    out += [
        "",
        "The write-up with its evidence: --format markdown; with charts: --format html -o report.html",
    ]
    return "\n".join(out) + "\n"
