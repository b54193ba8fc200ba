"""The live terminal view of `pgslots watch` (Rich): slots used against usable, backends by
application and state, a short history, and a warning line when headroom runs low.

Built fresh from the latest snapshot and the recent history at every refresh; it holds no
state of its own, so it is rendered the same way in a test (to a recording console).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pgslots.live.model import Snapshot
from pgslots.report.snapshot import by_application

BARS = "▁▂▃▄▅▆▇█"
HISTORY = 60


def sparkline(values: Sequence[int | None], ceiling: int | None) -> str:
    """One character per snapshot; a gap or refusal shows as "x"."""
    top = max([ceiling or 0, *(v for v in values if v is not None)]) or 1
    return "".join(
        "x" if v is None else BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))]
        for v in values
    )


def _slots_bar(used: int, usable: int, width: int = 40) -> Text:
    filled = min(width, round(used / usable * width)) if usable else width
    share = used / usable if usable else 1.0
    style = "red" if share >= 0.9 else "yellow" if share >= 0.75 else "green"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


def render_view(
    latest: Snapshot, history: Sequence[Snapshot], warn_fraction: float
) -> RenderableType:
    parts: list[RenderableType] = []
    when = latest.taken_at.strftime("%H:%M:%S UTC")
    if latest.refused is not None:
        parts.append(
            Text(
                f"{when}  REFUSED ({latest.refused.category}): {latest.refused.message}",
                style="bold red",
            )
        )
        parts.append(Text(f"who could still connect: {latest.refused.who_could_connect}"))
    elif not latest.ok:
        parts.append(
            Text(
                f"{when}  no data: {latest.unreachable or '; '.join(latest.notes)}",
                style="bold yellow",
            )
        )
    else:
        role = latest.role.name if latest.role else "?"
        used, usable = latest.client_backends or 0, latest.usable_for_role or 0
        header = Text(
            f"{when}  PostgreSQL {latest.server_version}  {latest.target}\n", style="bold"
        )
        header += Text(f"slots used {used} / {usable} usable by {role}  ") + _slots_bar(
            used, usable
        )
        header += Text(f"  headroom {latest.headroom_for_role} ({latest.headroom_limited_by})")
        parts.append(header)
        parts.append(Text(latest.usable_formula, style="dim"))
        if latest.headroom_below(warn_fraction):
            parts.append(
                Text(
                    f"WARNING: headroom {latest.headroom_for_role} is under {warn_fraction:.0%} of the "
                    f"{usable} usable slots",
                    style="bold red",
                )
            )
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("application", "total", "active", "idle", "idle in tx", "other"):
            table.add_column(column, justify="left" if column == "application" else "right")
        for row in by_application(latest)[:15]:
            table.add_row(*(str(v) for v in row))
        parts.append(table)
    recent = list(history)[-HISTORY:]
    ceiling = latest.usable_for_role or next(
        (s.usable_for_role for s in reversed(recent) if s.usable_for_role), None
    )
    parts.append(
        Text(f"history ({len(recent)} snapshots, used slots): ", style="dim")
        + Text(sparkline([s.client_backends if s.ok else None for s in recent], ceiling))
    )
    if latest.pgbouncer is not None:
        state = latest.pgbouncer
        parts.append(
            Text(
                f"{state.kind}: {state.clients_waiting} clients waiting, oldest {state.maxwait_seconds:.1f} s; "
                f"{state.server_connections} server connections; pool sizes sum "
                f"{state.server_side_capacity}",
                style="yellow" if state.clients_waiting else "",
            )
        )
    return Group(*parts)
