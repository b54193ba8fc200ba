"""Charts for the diagnosis report: matplotlib, rendered server-side to SVG, inlined in HTML.

Why matplotlib and SVG: the HTML report must open offline, so no JavaScript charting
library fetched from a CDN; SVG stays sharp in print and is small for a few hundred
points; matplotlib is the established plotting library, with no browser or server needed.

Why the colour tricks: one SVG must read well on a light page, a dark page
(`prefers-color-scheme: dark`) and paper. The figure and axes are transparent; text, axes
and reference lines are drawn in a sentinel "ink" colour that we then replace by
`currentColor`, so they take the page's text colour; data series use the Okabe-Ito
palette's mid-luminance colours, which keep their contrast on both backgrounds.
Text stays text (`svg.fonttype: none`), so titles can be searched, copied and checked.

Each function takes already-computed numbers (from the `Diagnosis`) and returns a `Chart`,
or None when it has nothing to draw; the renderer then says which input would draw it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pgslots.diagnosis import BackendSeries, Capacity, GroupBudget, LabRun, LabScenario
from pgslots.events.model import Incident
from pgslots.remedy import Remedy

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

INK = "#010203"  # replaced by currentColor
FAINT_INK = "#020304"  # replaced by currentColor at low opacity (grids)

# Okabe-Ito, the members readable on white and on near-black.
ORANGE = "#e69f00"
SKY = "#56b4e9"
GREEN = "#009e73"
VERMILLION = "#d55e00"
PURPLE = "#cc79a7"
BLUE = "#0072b2"
GREY = "#999999"
PALETTE = (SKY, ORANGE, GREEN, PURPLE, VERMILLION, BLUE, GREY)

P = ParamSpec("P")
R = TypeVar("R")

CATEGORY_COLOURS = {
    "reserved_superuser": ORANGE,
    "too_many_clients": VERMILLION,
    "reserved_role": PURPLE,
    "role_limit": GREEN,
    "database_limit": BLUE,
    "slots_unspecified": SKY,
}

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "pgslots",
    "font.family": "sans-serif",
    "font.size": 10,
    "text.color": INK,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.titleweight": "bold",
    "axes.titlesize": 11,
    "axes.facecolor": "none",
    "figure.facecolor": "none",
    "xtick.color": INK,
    "ytick.color": INK,
    "grid.color": FAINT_INK,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

WIDTH_IN = 7.5
HEIGHT_IN = 3.4


@dataclasses.dataclass(frozen=True)
class Chart:
    key: str  # stable id, also the HTML element id: "errors-over-time"
    title: str
    svg: str  # an <svg> element, ready to inline
    description: str  # the text alternative: what the chart shows, in numbers


def _figure(height: float = HEIGHT_IN) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # imported here: only HTML reports pay for matplotlib

    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    return fig, fig.subplots()


def _themed(func: Callable[P, R]) -> Callable[P, R]:
    """Run a chart function under the report's matplotlib settings: artists take their
    colours and fonts when they are created, so the whole drawing happens inside."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib as mpl

        with mpl.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def _to_svg(fig: Any, key: str, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", transparent=True, metadata={"Date": None, "Creator": None})
    return inline_svg(buf.getvalue(), key, title)


def inline_svg(svg: str, key: str, title: str) -> str:
    """An SVG document made fit to inline in HTML: no XML prolog, DOCTYPE or metadata (they
    name external URLs), ids prefixed so several charts can share a page, the ink colours
    turned into `currentColor`, scaling to the container's width, and a <title>."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{key}-{m[1]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{key}-{m[1]})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{key}-{m[1]}"', svg)
    svg = svg.replace(f"stroke: {FAINT_INK}", "stroke: currentColor; stroke-opacity: 0.22")
    svg = svg.replace(FAINT_INK, "currentColor")
    svg = svg.replace(INK, "currentColor")
    svg = re.sub(r'<svg ([^>]*?)width="[^"]+" height="[^"]+"', r"<svg \1", svg, count=1)
    svg = svg.replace("<svg ", f'<svg role="img" aria-labelledby="{key}-title" class="chart" ', 1)
    head_end = svg.index(">") + 1
    return f'{svg[:head_end]}\n <title id="{key}-title">{_escape(title)}</title>{svg[head_end:]}'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _style(fig: Any, ax: Any, title: str, xlabel: str, ylabel: str = "", grid: str = "y") -> None:
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, axis=grid)
    ax.set_axisbelow(True)


def _legend(fig: Any) -> None:
    """Below the plot, outside it: never hides data. As many columns as fit the width
    (about 95 characters of 8-point text across the figure)."""
    handles, labels = fig.axes[0].get_legend_handles_labels()
    widest = max((len(label) for label in labels), default=1) + 6
    ncols = max(1, min(len(labels), 95 // widest))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8)


def _time_axis(ax: Any, times: Sequence[dt.datetime]) -> None:
    import matplotlib.dates as mdates
    import matplotlib.ticker as mticker

    span = (max(times) - min(times)) if times else dt.timedelta(0)
    formats = (
        ("%H:%M", "%H:%M:%S") if span <= dt.timedelta(days=1) else ("%m-%d %H:%M", "%m-%d %H:%M:%S")
    )

    class DistinctTimes(mticker.Formatter):
        """The shortest format that gives every tick its own label: a short record (a lab
        run of a few minutes) gets ticks every few seconds, which "%H:%M" would repeat."""

        def format_ticks(self, values: Sequence[float]) -> list[str]:
            moments = [mdates.num2date(v, tz=dt.timezone.utc) for v in values]
            for fmt in formats:
                labels = [m.strftime(fmt) for m in moments]
                if len(set(labels)) == len(labels):
                    return labels
            return labels

        def __call__(self, x: float, pos: int | None = None) -> str:
            return mdates.num2date(x, tz=dt.timezone.utc).strftime(formats[-1])

    ax.xaxis.set_major_formatter(DistinctTimes())
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=dt.timezone.utc, maxticks=10))


def _naive_utc(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def _bucket_label(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours}-hour" if hours > 1 else "hour"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes}-minute" if minutes > 1 else "minute"
    return f"{seconds}-second"


ERRORS_TITLE = "Connection errors over time, by category"
BACKENDS_TITLE = "Client backends over time vs usable slots"
BUDGET_TITLE = "Connection budget per process group vs usable slots"
REMEDIES_TITLE = "Remedies: demand after each change vs usable slots"


def _family_colour(family: str, i: int) -> str:
    parts = family.split("+")
    if len(parts) > 1:
        return (
            PURPLE
            if set(parts) <= {"reserved_superuser", "too_many_clients", "reserved_role"}
            else BLUE
        )
    return CATEGORY_COLOURS.get(family, (GREEN, SKY, GREY, BLUE)[i % 4])


@_themed
def errors_over_time(incident: Incident | None) -> Chart | None:
    """Bars per bucket. Stacked by message family (each event once, by the set of wordings
    it carries) when the incident has them per bucket; otherwise side by side per category,
    since an event carrying two wordings counts under each and stacking would overcount."""
    if incident is None or not incident.buckets:
        return None
    fig, ax = _figure()
    times = [_naive_utc(b.start) for b in incident.buckets]
    bucket = dt.timedelta(seconds=incident.bucket_seconds)
    many = len(times) > 24
    stacked = all(
        b.by_combination and sum(b.by_combination.values()) == b.total for b in incident.buckets
    )
    if stacked:
        families = list(incident.by_combination)
        bottoms = [0] * len(times)
        for i, family in enumerate(families):
            counts = [b.by_combination.get(family, 0) for b in incident.buckets]
            label = f"{family.replace('+', ' + ')} ({sum(counts)})"
            ax.bar(
                times,
                counts,
                width=bucket * 0.8,
                bottom=bottoms,
                align="edge",
                color=_family_colour(family, i),
                label=label,
                edgecolor="none",
            )
            bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
        if not many:
            for t, total in zip(times, bottoms, strict=True):
                if total:
                    ax.annotate(
                        str(total),
                        (t + bucket * 0.4, total),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        fontsize=8,
                        color=INK,
                    )
    else:
        categories = [
            c for c in incident.by_category if any(b.by_category.get(c) for b in incident.buckets)
        ]
        width = bucket / max(1, len(categories)) * 0.85
        for i, category in enumerate(categories):
            colour = _family_colour(category, i)
            counts = [b.by_category.get(category, 0) for b in incident.buckets]
            label = f"{category} ({sum(counts)})"
            if many:
                ax.step(times, counts, where="post", color=colour, linewidth=1.6, label=label)
            else:
                offsets = [t + bucket * 0.075 + width * i for t in times]
                bars = ax.bar(offsets, counts, width=width, align="edge", color=colour, label=label)
                ax.bar_label(
                    bars,
                    labels=[str(c) if c else "" for c in counts],
                    fontsize=8,
                    padding=2,
                    color=INK,
                )
    if many:
        _time_axis(ax, times)
    else:
        ax.set_xlim(times[0] - bucket * 0.1, times[-1] + bucket * 1.1)
        ax.set_xticks(times, [f"{t:%H:%M}" for t in times])
    how = "stacked by message" if stacked else "per category"
    _style(
        fig,
        ax,
        ERRORS_TITLE,
        f"time (UTC), bucket start; {how}",
        f"errors per {_bucket_label(incident.bucket_seconds)} bucket",
    )
    _legend(fig)
    description = (
        f"{incident.total} errors in {len(times)} buckets of {incident.bucket_seconds} s; per bucket: "
        + ", ".join(f"{t:%H:%M} {b.total}" for t, b in zip(times, incident.buckets, strict=True))
    )
    return Chart(
        "errors-over-time",
        ERRORS_TITLE,
        _to_svg(fig, "errors-over-time", ERRORS_TITLE),
        description,
    )


def _reference_lines(ax: Any, capacity: Capacity | None, horizontal: bool) -> None:
    if capacity is None:
        return
    draw = ax.axhline if horizontal else ax.axvline
    if capacity.usable is not None:
        assumed = ", assumed" if capacity.usable_assumed else ""
        draw(
            capacity.usable,
            color=INK,
            linestyle="--",
            linewidth=1.3,
            label=f"usable slots ({capacity.usable}{assumed})",
        )
    if capacity.max_connections is not None and capacity.max_connections != capacity.usable:
        draw(
            capacity.max_connections,
            color=INK,
            linestyle=":",
            linewidth=1,
            label=f"max_connections ({capacity.max_connections})",
        )


@_themed
def backends_over_time(series: Sequence[BackendSeries], capacity: Capacity | None) -> Chart | None:
    drawable = [s for s in series if s.points]
    if not drawable:
        return None
    fig, ax = _figure()
    all_times: list[dt.datetime] = []
    for i, s in enumerate(drawable):
        times = [_naive_utc(p.ts) for p in s.points]
        values = [p.backends for p in s.points]
        all_times += times
        label = f"{s.source} (peak {s.peak})" if s.peak is not None else s.source
        if len(times) == 1:
            ax.plot(
                times,
                values,
                marker="o",
                linestyle="none",
                color=PALETTE[i % len(PALETTE)],
                label=label,
            )
        else:
            ax.step(
                times,
                values,
                where="post",
                color=PALETTE[i % len(PALETTE)],
                linewidth=1.6,
                label=label,
            )
    _reference_lines(ax, capacity, horizontal=True)
    ax.set_ylim(bottom=0)
    _time_axis(ax, all_times)
    _style(fig, ax, BACKENDS_TITLE, "time (UTC)", "client backends (connections)")
    _legend(fig)
    description = "; ".join(
        f"{s.source}: {len(s.points)} points, peak {s.peak}"
        + (f" at {s.peak_at:%H:%M:%S} UTC" if s.peak_at else "")
        for s in drawable
    )
    if capacity and capacity.usable is not None:
        description += f"; usable slots {capacity.usable}"
    return Chart(
        "backends-over-time",
        BACKENDS_TITLE,
        _to_svg(fig, "backends-over-time", BACKENDS_TITLE),
        description,
    )


def _demand_bars(
    ax: Any,
    labels: Sequence[str],
    steady: Sequence[int | None],
    worst: Sequence[int | None],
    cap: float,
) -> None:
    """Steady demand solid, worst case outlined; an unbounded worst case runs off the axis
    with an arrow and the word 'unbounded'."""
    ys = list(range(len(labels)))
    drawn_worst = [w if w is not None else cap for w in worst]
    ax.barh(
        ys,
        drawn_worst,
        height=0.6,
        color="none",
        edgecolor=ORANGE,
        linewidth=1.4,
        hatch="///",
        label="worst case",
    )
    ax.barh(ys, [s or 0 for s in steady], height=0.6, color=SKY, label="steady")
    for y, s, w in zip(ys, steady, worst, strict=True):
        text = f"{s if s is not None else '?'} .. {w if w is not None else 'unbounded'}"
        x = w if w is not None else cap
        ax.annotate(
            text,
            (x, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=INK,
        )
        if w is None:
            ax.annotate(
                "",
                (cap, y),
                xytext=(cap * 0.9, y),
                arrowprops={"arrowstyle": "->", "color": ORANGE, "linewidth": 1.4},
            )
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, cap * 1.18)


def _axis_cap(values: Sequence[int | None], capacity: Capacity | None) -> float:
    known = [v for v in values if v is not None]
    if capacity and capacity.usable is not None:
        known.append(capacity.usable)
    if capacity and capacity.max_connections is not None:
        known.append(capacity.max_connections)
    return max([*known, 1]) * 1.15


@_themed
def budget_per_group(budget: Sequence[GroupBudget], capacity: Capacity | None) -> Chart | None:
    if not budget:
        return None
    fig, ax = _figure(height=max(2.4, 1.3 + 0.55 * (len(budget) + 1)))
    steady_total = (
        None if any(g.steady is None for g in budget) else sum(g.steady or 0 for g in budget)
    )
    worst_total = (
        None if any(g.worst is None for g in budget) else sum(g.worst or 0 for g in budget)
    )
    total_label = "all groups"
    if capacity is not None and capacity.steady is not None:
        # The server's own demand (after pgbouncer, when there is one), as the audit computed it.
        if (capacity.steady, None if capacity.worst_unbounded else capacity.worst) != (
            steady_total,
            worst_total,
        ):
            total_label = "on the server\n(after pgbouncer)"
        steady_total, worst_total = (
            capacity.steady,
            None if capacity.worst_unbounded else capacity.worst,
        )
    labels = [f"{g.group}\n{g.server_model}" for g in budget] + [total_label]
    steady = [g.steady for g in budget] + [steady_total]
    worst = [g.worst for g in budget] + [worst_total]
    cap = _axis_cap(steady + worst, capacity)
    _demand_bars(ax, labels, steady, worst, cap)
    _reference_lines(ax, capacity, horizontal=False)
    _style(fig, ax, BUDGET_TITLE, "simultaneous server connections", grid="x")
    _legend(fig)
    description = "; ".join(
        f"{g.group}: steady {g.steady}, worst {g.worst if g.worst is not None else 'unbounded'}"
        for g in budget
    )
    if capacity and capacity.usable is not None:
        description += f"; usable slots {capacity.usable}"
    return Chart(
        "budget-per-group",
        BUDGET_TITLE,
        _to_svg(fig, "budget-per-group", BUDGET_TITLE),
        description,
    )


@_themed
def remedy_comparison(
    remedies: Sequence[Remedy], capacity: Capacity | None, lab: LabRun | None = None
) -> Chart | None:
    """Left: each remedy's predicted demand (steady .. worst) beside today's, against the
    usable slots. Right, when a lab run was given: the share of requests that failed in
    each scenario of that run. The lab runs at its own scale, so its numbers get their own
    panel instead of sharing the production axis."""
    rows = [r for r in remedies if r.predicted is not None]
    measured = [s for s in lab.scenarios if s.requests] if lab is not None else []
    if not rows and not measured:
        return None
    labels, steady, worst = [], [], []
    if capacity is not None and (capacity.steady is not None or capacity.worst_unbounded):
        labels.append("today (no change)")
        steady.append(capacity.steady)
        worst.append(None if capacity.worst_unbounded else capacity.worst)
    for r in rows:
        raised = [c.value for c in r.changes if c.field == "max_connections"]
        labels.append(
            f"{r.code} {_wrap_label(r.title)}"
            + (f"\n(max_connections {raised[-1]})" if raised else "")
        )
        steady.append(r.predicted.steady if r.predicted else None)
        worst.append(r.predicted.worst if r.predicted else None)
    height = max(
        2.6, 1.6 + 0.55 * (len(labels) + len(measured)) + (0.8 if measured and labels else 0)
    )
    fig, ax = _figure(height=height)
    if measured:
        fig.clear()
        if labels:
            ax, lab_ax = fig.subplots(2, 1, height_ratios=(len(labels) + 1, len(measured) + 1))
        else:
            lab_ax = fig.subplots()
    if labels:
        cap = _axis_cap(steady + worst, capacity)
        _demand_bars(ax, labels, steady, worst, cap)
        _reference_lines(ax, capacity, horizontal=False)
        ax.grid(True, axis="x")
        ax.set_axisbelow(True)
        ax.set_xlabel("server connections predicted by the budget model")
        ax.set_title("predicted demand after each change", loc="left", fontsize=9)
    if measured:
        names = [f"{s.name}" + (f" ({s.remedy})" if s.remedy else "") for s in measured]
        shares = [100.0 * s.failed_share for s in measured]
        ys = list(range(len(names)))
        baseline = next((s for s in measured if lab is not None and s.name == lab.baseline), None)
        outcomes = [_lab_outcome(s, baseline) for s in measured]
        lab_ax.barh(ys, shares, height=0.6, color=[LAB_OUTCOMES[o] for o in outcomes])
        for outcome in dict.fromkeys(outcomes):
            lab_ax.barh([0], [0], height=0, color=LAB_OUTCOMES[outcome], label=outcome)
        for y, share, s in zip(ys, shares, measured, strict=True):
            lab_ax.annotate(
                f"{s.failed_requests}/{s.requests}",
                (share, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=INK,
            )
        lab_ax.set_yticks(ys, names)
        lab_ax.invert_yaxis()
        lab_ax.set_xlim(0, max([*shares, 10.0]) * 1.25)
        lab_ax.set_xlabel("failed requests in the lab run (% of requests)")
        lab_ax.set_title("measured in the lab (at its own scale)", loc="left", fontsize=9)
        lab_ax.grid(True, axis="x")
        lab_ax.set_axisbelow(True)
    fig.suptitle(REMEDIES_TITLE, x=0.01, ha="left", fontweight="bold", fontsize=11)
    if labels:
        _legend(fig)
    if measured:
        lab_ax.legend(loc="lower right", fontsize=8)
    description = "; ".join(
        f"{label.splitlines()[0]}: {s if s is not None else '?'} .. {w if w is not None else 'unbounded'}"
        for label, s, w in zip(labels, steady, worst, strict=True)
    )
    if measured:
        description += "; lab: " + ", ".join(
            f"{s.name} {s.failed_requests}/{s.requests} failed" for s in measured
        )
    return Chart(
        "remedy-comparison",
        REMEDIES_TITLE,
        _to_svg(fig, "remedy-comparison", REMEDIES_TITLE),
        description,
    )


LAB_OUTCOMES = {
    "baseline": GREY,
    "no failure": GREEN,
    "fewer failures, still failing": ORANGE,
    "no better than baseline": VERMILLION,
}
"""A lab scenario's bar colour says its outcome: green only when nothing failed."""


def _lab_outcome(scenario: LabScenario, baseline: LabScenario | None) -> str:
    if baseline is not None and scenario.name == baseline.name:
        return "baseline"
    if scenario.failed_requests == 0:
        return "no failure"
    if baseline is not None and scenario.failed_share < baseline.failed_share:
        return "fewer failures, still failing"
    return "no better than baseline"


def _wrap_label(title: str, width: int = 34) -> str:
    """Long remedy titles on two lines, so the bars keep their width."""
    if len(title) <= width:
        return title
    cut = title.rfind(" ", 0, width)
    cut = cut if cut > 0 else width
    return title[:cut] + "\n" + title[cut + 1 :]
