"""Renderers of an `Incident`: a compact terminal summary, Markdown to paste into an issue,
and stable JSON.

Nothing is computed here that the JSON does not also hold: the renderers only arrange the
`Incident`'s numbers, so the three formats always agree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from pgslots.envelope import dumps, envelope
from pgslots.events.model import FacetRow, Incident, InputSummary, SourceRef
from pgslots.events.timeline import format_duration, format_share
from pgslots.findings import Finding
from pgslots.report.findings import finding_items_markdown, finding_lines
from pgslots.report.layout import fit
from pgslots.serde import to_jsonable

"""Bumped only on an incompatible change; fields may be added within a version."""

TEXT_FACET_ROWS = 8
TEXT_MAX_BUCKET_ROWS = 48
BAR_WIDTH = 40
PALETTE = (
    "red",
    "yellow",
    "magenta",
    "cyan",
    "blue",
    "green",
    "bright_red",
    "bright_yellow",
    "white",
)


# -- shared wording -----------------------------------------------------------------------------


def _utc(moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(dt.timezone.utc).strftime(fmt) if moment else "-"


def _window_text(incident: Incident) -> str:
    start, end = incident.window_start, incident.window_end
    if not start or not end:
        return "no time window"
    same_day = start.date() == (end - dt.timedelta(microseconds=1)).date()
    clock = _clock_format(incident)
    return f"{_utc(start, '%Y-%m-%d ' + clock)}-{_utc(end, clock if same_day else '%Y-%m-%d ' + clock)} UTC"


def _clock_format(incident: Incident) -> str:
    """Bucket times to the second when the buckets are shorter than a minute."""
    return "%H:%M:%S" if incident.bucket_seconds % 60 else "%H:%M"


def _ref(ref: SourceRef) -> str:
    return str(ref)


def _skipped_total(inputs: Iterable[InputSummary]) -> int:
    return sum(i.skipped for i in inputs)


def _input_line(summary: InputSummary) -> str:
    line = (
        f"{summary.path}: {summary.format}, {summary.events} events from {summary.records} records"
    )
    if summary.skipped:
        where = ", ".join(_ref(r) for r in summary.skipped_examples)
        line += f"; {summary.skipped} lines skipped (malformed; first at {where})"
    if summary.outside_window:
        line += f"; {summary.outside_window} events outside --since/--until"
    return line


def _error_classes(incident: Incident) -> str:
    rows = incident.facets.get("error_class", ())
    return ", ".join(f"`{r.value}` x{r.count}" for r in rows[:3] if r.value != "(not set)")


def _generic(value: Any) -> list[tuple[str, Any]]:
    """A dataclass's non-empty fields, for the generic rendering of `Incident.server_log`."""
    if not dataclasses.is_dataclass(value):
        return []
    pairs = []
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item in (None, (), {}, [], ""):
            continue
        pairs.append((field.name.replace("_", " "), item))
    return pairs


def _scalar(value: Any) -> str:
    """One value as a person reads it: a time in UTC, a count per name as `name n, ...`
    (largest first), a record as its values; never a Python repr."""
    if isinstance(value, dt.datetime):
        return _utc(value, "%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, Mapping):
        items = sorted(
            value.items(), key=lambda kv: -kv[1] if isinstance(kv[1], (int, float)) else 0
        )
        return ", ".join(f"{k} {_scalar(v)}" for k, v in items)
    if dataclasses.is_dataclass(value):
        return " ".join(_scalar(v) for _, v in _generic(value))
    return str(value)


def _server_log_lines(incident: Incident) -> list[tuple[str, str]]:
    """`Incident.server_log`, field by field, whatever fields it has: the server-log
    summary grows with its readers, and this rendering need not change with it."""
    lines = []
    for name, value in _generic(incident.server_log):
        if isinstance(value, Mapping):
            text = "; ".join(f"{k}: {_scalar(v)}" for k, v in value.items())
        elif isinstance(value, (tuple, list)):
            text = "; ".join(_scalar(v) for v in value[:12]) + (" ..." if len(value) > 12 else "")
        else:
            text = _scalar(value)
        lines.append((name, text))
    return lines


# -- JSON ---------------------------------------------------------------------------------------


def render_json(incident: Incident, findings: Sequence[Finding] = ()) -> str:
    """The `Incident` in the JSON envelope (docs/json.md), with bucket end times added."""
    data = to_jsonable(incident)
    for bucket in data["buckets"]:
        start = dt.datetime.fromisoformat(bucket["start"].replace("Z", "+00:00"))
        bucket["end"] = to_jsonable(start + dt.timedelta(seconds=incident.bucket_seconds))
    data["skipped"] = _skipped_total(incident.inputs)
    return dumps(envelope("events", data, findings))


# -- Markdown -----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_facet(name: str, rows: Sequence[FacetRow], limit: int = 15) -> list[str]:
    lines = [f"| {name} | Events | Share |", "|---|---:|---:|"]
    lines += [f"| `{_md(r.value)}` | {r.count} | {format_share(r.share)} |" for r in rows[:limit]]
    if len(rows) > limit:
        rest = rows[limit:]
        lines.append(
            f"| {len(rest)} more | {sum(r.count for r in rest)} | {format_share(sum(r.share for r in rest))} |"
        )
    return lines


def render_markdown(incident: Incident, findings: Sequence[Finding] = ()) -> str:
    out: list[str] = ["## Observation", ""]
    if not incident.total:
        out += ["No connection-failure events were found in the inputs.", ""]
    else:
        classes = _error_classes(incident)
        out += [
            f"Between {_window_text(incident)} the inputs record **{incident.total}** connection failures"
            + (f" ({classes})" if classes else "")
            + ":",
            "",
        ]
        families = list(incident.by_combination)
        size = format_duration(incident.bucket_seconds)
        out.append(
            f"| Bucket ({size}, UTC) | Events | " + " | ".join(f"`{c}`" for c in families) + " |"
        )
        out.append("|---|---:|" + "---:|" * len(families))
        for bucket in incident.buckets:
            cells = " | ".join(str(bucket.by_combination.get(c, 0)) for c in families)
            out.append(
                f"| {_utc(bucket.start, '%Y-%m-%d ' + _clock_format(incident))} | {bucket.total} | {cells} |"
            )
        out += ["", f"{incident.bucket_rule}; {incident.alignment}.", ""]
        out += ["Message families (each event counted once; they add up to the total):", ""]
        out += ["| Family | Events | Share | Source rows (sample) |", "|---|---:|---:|---|"]
        for family, n in incident.by_combination.items():
            sample = ", ".join(f"`{_ref(r)}`" for r in incident.family_samples.get(family, ())[:2])
            out.append(f"| `{family}` | {n} | {format_share(n / incident.total)} | {sample} |")
        out.append("")
        for name, rows in incident.facets.items():
            out += [f"By {name}:", "", *_md_facet(name, rows), ""]
        if incident.shape:
            out += [f"Shape: **`{incident.shape.label}`**: {incident.shape.rule}.", ""]
    if incident.server_log is not None:
        out += ["### From the server log", ""]
        out += [f"- {name}: {_md(text)}" for name, text in _server_log_lines(incident)]
        out.append("")
    out += ["## Interpretation", ""]
    out += [f"- {_md(note.text)}" for note in incident.notes]
    out += ["", "## Sources", ""]
    out += [f"- `{_md(_input_line(s))}`" for s in incident.inputs]
    for summary in incident.inputs:
        out += [f"  - {_md(n)}" for n in summary.notes]
    if incident.timezone_note:
        out.append(f"- {incident.timezone_note}")
    if findings:
        out += ["", "## Findings", ""] + finding_items_markdown(findings)
    out += [
        "",
        "_Generated by `pgslots events`; every count traces to the source rows above (JSON: `samples`)._",
    ]
    return "\n".join(out)


# -- terminal -----------------------------------------------------------------------------------


def _colors(incident: Incident) -> dict[str, str]:
    return {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(incident.by_combination)}


def _bar(by_family: Mapping[str, int], total: int, peak: int, colors: Mapping[str, str]) -> Text:
    text = Text()
    if not total:
        return text
    width = max(1, round(BAR_WIDTH * total / peak))
    cells_left = width
    families = list(by_family.items())
    for i, (family, n) in enumerate(families):
        cells = cells_left if i == len(families) - 1 else min(cells_left, round(width * n / total))
        text.append("█" * cells, style=colors.get(family, "white"))
        cells_left -= cells
    return text


def _bucket_table(incident: Incident, colors: Mapping[str, str]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column(justify="left", style="bold")
    table.add_column(justify="right")
    table.add_column()
    peak = max((b.total for b in incident.buckets), default=0)
    buckets = incident.buckets
    hidden = 0
    if len(buckets) > TEXT_MAX_BUCKET_ROWS:
        hidden = sum(1 for b in buckets if not b.total)
        buckets = tuple(b for b in buckets if b.total)
    day_changes = len({b.start.date() for b in incident.buckets}) > 1
    for bucket in buckets:
        clock = _clock_format(incident)
        label = _utc(bucket.start, f"%Y-%m-%d {clock}" if day_changes else clock)
        table.add_row(
            label,
            str(bucket.total),
            _bar(bucket.by_combination or {"": bucket.total}, bucket.total, peak, colors),
        )
    if hidden:
        table.add_row("", "", Text(f"({hidden} empty buckets not shown)", style="dim"))
    return table


def _count_table(
    header: str,
    rows: Iterable[tuple[str, int, float]],
    colors: Mapping[str, str] | None = None,
    more: tuple[int, int] | None = None,
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    table.add_column(header, overflow="fold")
    table.add_column("events", justify="right")
    table.add_column("share", justify="right")
    for value, n, share in rows:
        label = (
            Text("■ ", style=colors[value]) + Text(value)
            if colors and value in colors
            else Text(value)
        )
        table.add_row(label, str(n), format_share(share))
    if more:
        table.add_row(Text(f"{more[0]} more", style="dim"), str(more[1]), "")
    return table


def render_text(
    incident: Incident, findings: Sequence[Finding] = (), *, color: bool = False, width: int = 110
) -> str:
    console = Console(
        file=io.StringIO(),
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=False,
    )
    parts: list[Any] = []
    if incident.total:
        head = Text(f"{incident.total} connection failures", style="bold")
        head.append(f", {_window_text(incident)}")
        head.append(
            f" (first {_utc(incident.first_event, '%H:%M:%S')}, last {_utc(incident.last_event, '%H:%M:%S')})"
        )
        parts.append(head)
        if incident.shape:
            parts.append(
                Text.assemble(
                    ("shape ", "bold"),
                    (incident.shape.label, "bold cyan"),
                    f": {incident.shape.rule}",
                )
            )
        colors = _colors(incident)
        parts += [
            Text(""),
            Text(f"per {format_duration(incident.bucket_seconds)} bucket, UTC", style="bold"),
            _bucket_table(incident, colors),
            Text(f"{incident.bucket_rule}; {incident.alignment}", style="dim"),
        ]
        parts.append(
            _count_table(
                "message family (each event once)",
                ((f, n, n / incident.total) for f, n in incident.by_combination.items()),
                colors,
            )
        )
        single = [(name, rows[0].value) for name, rows in incident.facets.items() if len(rows) == 1]
        if single:
            parts.append(
                Text(
                    "all events: " + ", ".join(f"{name} {value}" for name, value in single),
                    style="dim",
                )
            )
        for name, rows in incident.facets.items():
            if len(rows) == 1:
                continue
            shown = rows[:TEXT_FACET_ROWS]
            rest = rows[TEXT_FACET_ROWS:]
            more = (len(rest), sum(r.count for r in rest)) if rest else None
            parts.append(
                _count_table(name, ((r.value, r.count, r.share) for r in shown), more=more)
            )
    else:
        parts.append(Text("No connection-failure events in the inputs.", style="bold"))
    if incident.server_log is not None:
        parts += [Text(""), Text("From the server log", style="bold")]
        fitted = fit(
            "\n".join(f"  {name}: {text}" for name, text in _server_log_lines(incident)), width
        )
        parts += [Text(line) for line in fitted.split("\n")]
    if incident.notes:
        parts += [Text(""), Text("Interpretation", style="bold")]
        notes = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
        notes.add_column(width=3)
        notes.add_column(ratio=1)
        for note in incident.notes:
            notes.add_row("  •", note.text)
        parts.append(notes)
    parts += [Text(""), Text("Inputs", style="bold")]
    for summary in incident.inputs:
        parts += [Text(line) for line in fit(f"  {_input_line(summary)}", width).split("\n")]
        for remark in summary.notes:
            parts += [Text(line, style="dim") for line in fit(f"    {remark}", width).split("\n")]
    if incident.timezone_note:
        parts.append(Text(f"  {incident.timezone_note}", style="dim"))
    console.print(Group(*parts))
    rendered = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in rendered.splitlines()]
    if findings:  # plain lines, folded like every other text report's findings
        lines += ["", f"Findings ({len(findings)})"] + fit(
            "\n".join(finding_lines(findings)), width
        ).split("\n")
    return "\n".join(lines)
