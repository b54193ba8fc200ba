"""Renderers for one live `Snapshot` and its findings: text, Markdown, JSON, and the one-line
summary `watch` prints per snapshot when its output is not a terminal.

They only display: every figure comes from the snapshot, every formula from its
`*_formula` fields.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pgslots.envelope import dumps, envelope
from pgslots.findings import Finding
from pgslots.live.model import Snapshot
from pgslots.report.findings import finding_items_markdown, finding_lines
from pgslots.serde import to_jsonable

NONE = "(none)"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return str(value)


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def text_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], indent: str = "  "
) -> list[str]:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(_is_number(r[i]) or r[i] == "-" for r in cells) and bool(cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=False)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(r) for r in cells)]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    def esc(value: object) -> str:
        return _cell(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return lines


def _application(name: str | None) -> str:
    return NONE if name == "" else (name if name is not None else "(hidden)")


def by_application(snapshot: Snapshot) -> list[tuple[str, int, int, int, int, int]]:
    """(application, total, active, idle, idle in transaction, other/hidden), largest first."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for backend in snapshot.backends:
        row = table[_application(backend.application)]
        row[0] += backend.count
        column = {"active": 1, "idle": 2}.get(backend.state or "", 4)
        if (backend.state or "").startswith("idle in transaction"):
            column = 3
        row[column] += backend.count
    return sorted(((app, *counts) for app, counts in table.items()), key=lambda r: (-r[1], r[0]))  # type: ignore[misc]


def _slot_rows(snapshot: Snapshot) -> list[tuple[str, object, str]]:
    role = snapshot.role.name if snapshot.role else "?"
    rows: list[tuple[str, object, str]] = [
        ("max_connections", snapshot.max_connections, ""),
        ("superuser_reserved_connections", snapshot.superuser_reserved_connections, ""),
        (
            "reserved_connections",
            snapshot.reserved_connections,
            "" if snapshot.reserved_connections is not None else "not before PostgreSQL 16",
        ),
        (f"usable by role {role}", snapshot.usable_for_role, snapshot.usable_formula),
        ("client backends", snapshot.client_backends, "this probe's own connection included"),
        (
            f"headroom for {role}",
            snapshot.headroom_for_role,
            f"{snapshot.headroom_formula} (limited by {snapshot.headroom_limited_by})",
        ),
    ]
    return rows


def _role_rows(snapshot: Snapshot) -> list[tuple[object, ...]]:
    return [
        (
            r.name,
            r.connections,
            r.connection_limit,
            "yes" if r.is_superuser else "no",
            "-" if r.can_use_reserved is None else ("yes" if r.can_use_reserved else "no"),
        )
        for r in snapshot.roles
    ]


def _backend_rows(snapshot: Snapshot) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for b in snapshot.backends:
        application = _application(b.application)
        if (
            b.application == "pgslots"
            and snapshot.own_pid is not None
            and b.user == snapshot.probe_user
        ):
            application += " (this probe)"
        rows.append(
            (
                b.count,
                b.database,
                b.user,
                application,
                b.client,
                b.state or "(hidden)",
                b.max_idle_seconds,
                b.max_idle_in_transaction_seconds,
                b.topology_group,
            )
        )
    return rows


BACKEND_HEADERS = (
    "n",
    "database",
    "user",
    "application",
    "client",
    "state",
    "idle s",
    "idle in tx s",
    "group",
)


def _expectation_rows(snapshot: Snapshot) -> list[tuple[object, ...]]:
    return [
        (
            e.group,
            e.kind,
            e.matched,
            e.expected_steady,
            "unbounded"
            if e.expected_worst is None and e.expected_steady is not None
            else e.expected_worst,
            e.status,
        )
        for e in snapshot.expectations
    ]


def _pool_rows(snapshot: Snapshot) -> list[tuple[object, ...]]:
    assert snapshot.pgbouncer is not None
    return [
        (
            p.database,
            p.user,
            p.pool_mode,
            p.cl_active,
            p.cl_waiting,
            f"{p.maxwait_seconds:.3f}",
            p.sv_active,
            p.sv_idle,
            p.sv_used,
            p.pool_size,
            p.reserve_pool_size,
        )
        for p in snapshot.pgbouncer.pools
    ]


POOL_HEADERS = (
    "database",
    "user",
    "mode",
    "cl_active",
    "cl_waiting",
    "maxwait s",
    "sv_active",
    "sv_idle",
    "sv_used",
    "pool_size",
    "reserve",
)


def _header(snapshot: Snapshot) -> str:
    when = snapshot.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    version = f"PostgreSQL {snapshot.server_version}" if snapshot.server_version else "PostgreSQL"
    timing = f" (queries {snapshot.query_ms:.1f} ms)" if snapshot.query_ms is not None else ""
    return f"{version} at {snapshot.target}, {when}{timing}"


def render_text(snapshot: Snapshot, findings: Sequence[Finding] = ()) -> str:
    lines: list[str] = []
    if snapshot.refused is not None:
        r = snapshot.refused
        lines += [
            (
                f"REFUSED: the server at {snapshot.target} is full for role {snapshot.probe_user or '?'} "
                f"({r.category}), {snapshot.taken_at:%Y-%m-%d %H:%M:%S UTC}"
            ),
            f"  server said: {r.message}",
            f"  who could still connect: {r.who_could_connect}",
        ]
    elif snapshot.unreachable is not None:
        lines.append(f"UNREACHABLE: {snapshot.target}: {snapshot.unreachable}")
    else:
        lines.append(_header(snapshot))
        lines += ["", "Slots"] + text_table(("", "n", "how"), _slot_rows(snapshot))[1:]
        lines += ["", "Client backends by application"] + text_table(
            ("application", "total", "active", "idle", "idle in tx", "other"),
            by_application(snapshot),
        )
        lines += [
            "",
            "Client backends by database, user, application, client and state",
        ] + text_table(BACKEND_HEADERS, _backend_rows(snapshot))
        lines += ["", "Roles"] + text_table(
            ("role", "connections", "limit", "superuser", "pg_use_reserved"), _role_rows(snapshot)
        )
        lines += ["", "Databases"] + text_table(
            ("database", "connections", "limit"),
            [(d.name, d.connections, d.connection_limit) for d in snapshot.database_limits],
        )
        if snapshot.other_backends:
            lines += [
                "",
                "Other backends (their own slot pools, not counted above): "
                + ", ".join(f"{k} {v}" for k, v in snapshot.other_backends.items()),
            ]
        if snapshot.expectations:
            lines += ["", "Topology: expected against matched"] + text_table(
                ("group", "kind", "matched", "steady", "worst", "status"),
                _expectation_rows(snapshot),
            )
    if snapshot.pgbouncer is not None:
        lines += [""] + _pgbouncer_text(snapshot)
    if snapshot.hidden:
        lines += ["", "Hidden for lack of privilege"] + [f"  - {h}" for h in snapshot.hidden]
    if snapshot.notes:
        lines += ["", "Notes"] + [f"  - {n}" for n in snapshot.notes]
    lines += ["", "Findings" if findings else "Findings: none"] + finding_lines(findings)
    return "\n".join(lines)


def _pgbouncer_text(snapshot: Snapshot) -> list[str]:
    state = snapshot.pgbouncer
    assert state is not None
    lines = [
        f"{state.kind} {state.version or ''} at {state.target}".replace("  ", " "),
        (
            f"  clients waiting {state.clients_waiting}, oldest wait {state.maxwait_seconds:.3f} s; "
            f"server connections held {state.server_connections}"
        ),
    ]
    if state.server_side_capacity is not None:
        lines.append(
            f"  pool sizes over (database, user) pairs: {state.server_side_capacity_formula}"
        )
    lines += text_table(POOL_HEADERS, _pool_rows(snapshot))
    if state.clients:
        lines += ["  Clients"] + text_table(
            ("n", "database", "user", "application", "state", "max wait s"),
            [
                (c.count, c.database, c.user, c.application or NONE, c.state, c.max_wait_seconds)
                for c in state.clients
            ],
            indent="    ",
        )
    lines += [f"  note: {n}" for n in state.notes]
    return lines


def render_markdown(snapshot: Snapshot, findings: Sequence[Finding] = ()) -> str:
    lines = ["## pgslots probe", ""]
    if snapshot.refused is not None:
        r = snapshot.refused
        lines += [
            (
                f"**Refused**: the server at `{snapshot.target}` is full for role `{snapshot.probe_user or '?'}` "
                f"(`{r.category}`)."
            ),
            "",
            f"> {r.message}",
            "",
            f"Who could still connect: {r.who_could_connect}.",
        ]
    elif snapshot.unreachable is not None:
        lines.append(f"**Unreachable**: `{snapshot.target}`: {snapshot.unreachable}")
    else:
        lines += [
            _header(snapshot).replace(snapshot.target, f"`{snapshot.target}`"),
            "",
            "### Slots",
            "",
        ]
        lines += markdown_table(("", "n", "how"), _slot_rows(snapshot))
        lines += ["", "### Client backends by application", ""] + markdown_table(
            ("application", "total", "active", "idle", "idle in tx", "other"),
            by_application(snapshot),
        )
        lines += ["", "### Client backends", ""] + markdown_table(
            BACKEND_HEADERS, _backend_rows(snapshot)
        )
        lines += ["", "### Roles", ""] + markdown_table(
            ("role", "connections", "limit", "superuser", "pg_use_reserved"), _role_rows(snapshot)
        )
        lines += ["", "### Databases", ""] + markdown_table(
            ("database", "connections", "limit"),
            [(d.name, d.connections, d.connection_limit) for d in snapshot.database_limits],
        )
        if snapshot.expectations:
            lines += ["", "### Topology", ""] + markdown_table(
                ("group", "kind", "matched", "steady", "worst", "status"),
                _expectation_rows(snapshot),
            )
    if snapshot.pgbouncer is not None:
        state = snapshot.pgbouncer
        lines += [
            "",
            f"### {state.kind} {state.version or ''}".rstrip(),
            "",
            (
                f"Clients waiting: {state.clients_waiting}; oldest wait {state.maxwait_seconds:.3f} s. "
                f"Pool sizes: {state.server_side_capacity_formula or 'unknown'}."
            ),
            "",
        ]
        lines += markdown_table(POOL_HEADERS, _pool_rows(snapshot))
    for title, items in (
        ("Hidden for lack of privilege", snapshot.hidden),
        ("Notes", snapshot.notes),
    ):
        if items:
            lines += ["", f"### {title}", ""] + [f"- {i}" for i in items]
    lines += ["", "### Findings", ""] + (finding_items_markdown(findings) or ["None."])
    return "\n".join(lines)


def render_json(
    snapshot: Snapshot,
    findings: Sequence[Finding] = (),
    command: str = "probe",
    indent: int | None = 2,
) -> str:
    """The snapshot in the JSON envelope (docs/json.md); `snapshot` reads back with
    `live.record.snapshot_from_json`."""
    return dumps(envelope(command, {"snapshot": to_jsonable(snapshot)}, findings), indent=indent)


def summary_line(snapshot: Snapshot, warn_fraction: float | None = None) -> str:
    """One line per watch snapshot, for pipes and logs."""
    when = snapshot.taken_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if snapshot.refused is not None:
        text = f"{when} REFUSED {snapshot.refused.category}: {snapshot.refused.message}"
    elif snapshot.unreachable is not None:
        text = f"{when} GAP {snapshot.unreachable}"
    elif not snapshot.ok:
        text = f"{when} NO DATA {'; '.join(snapshot.notes)}"
    else:
        role = snapshot.role.name if snapshot.role else "?"
        states = by_application(snapshot)
        active = sum(r[2] for r in states)
        idle = sum(r[3] for r in states)
        idle_tx = sum(r[4] for r in states)
        text = (
            f"{when} used {snapshot.client_backends}/{snapshot.usable_for_role} usable by {role}, "
            f"headroom {snapshot.headroom_for_role} · active {active} idle {idle} idle-in-tx {idle_tx}"
        )
        if warn_fraction is not None and snapshot.headroom_below(warn_fraction):
            text += f" · WARNING headroom under {warn_fraction:.0%}"
    if snapshot.pgbouncer is not None:
        text += (
            f" · pgbouncer waiting {snapshot.pgbouncer.clients_waiting} "
            f"maxwait {snapshot.pgbouncer.maxwait_seconds:.1f}s"
        )
    return text
