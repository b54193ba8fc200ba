"""Renderers of an audit (a `Diagnosis` with a `Topology`): text, Markdown, JSON, SARIF.

They only display: every number comes from the budget model, every location from `Evidence`.
"""

from __future__ import annotations

import json
from typing import Any

from pgslots import __version__
from pgslots.deploy import budget
from pgslots.deploy.model import Demand, ProcessGroup, Quantity, Topology, Unknown, is_server_count
from pgslots.diagnosis import Diagnosis
from pgslots.envelope import dumps, envelope
from pgslots.report.findings import finding_items_markdown, finding_lines
from pgslots.rules import load_all_checks
from pgslots.serde import to_jsonable


def _steady(demand: Demand) -> str:
    return "unknown" if demand.steady is None else str(demand.steady)


def _adds(unknown: Unknown) -> str:
    return str(unknown.adds_per_unit) if unknown.adds_per_unit is not None else unknown.adds_bound


def verdict(topology: Topology) -> str:
    """ "fits", "over" or "unknown": whether the worst case stays within the usable slots.
    Never "fits" while a group is unknown or the usable slots are only PostgreSQL's default."""
    demand = topology.demand
    if demand is None or not topology.groups:
        return "unknown"
    usable, known = budget.effective_usable(topology)
    if demand.unbounded or (demand.steady or 0) > usable or budget.known_worst(topology) > usable:
        return "over"
    if demand.unknown or not known:
        return "unknown"
    return "fits" if demand.worst is not None and demand.worst <= usable else "over"


def _q(quantity: Quantity | None, unbounded: str = "unbounded") -> str:
    if quantity is None:
        return "1"
    if quantity.value is None:
        return f"?({quantity.unknown})" if quantity.unknown else unbounded
    return str(quantity.value)


def shape(group: ProcessGroup) -> str:
    replicas = _q(group.replicas)
    if group.max_replicas is not None:
        replicas = f"{replicas}-{_q(group.max_replicas)}"
    hosts = "1?" if group.hosts.value is None and group.hosts.unknown else _q(group.hosts)
    parts = [
        f"{hosts} host",
        f"{replicas} ctr",
        f"{_q(group.processes)} proc",
        _q(group.per_process),
    ]
    if len(group.aliases) > 1:
        parts.append(f"{len(group.aliases)} aliases")
    return " x ".join(parts)


def evidence_of(group: ProcessGroup, limit: int = 3) -> str:
    located = [e.location() for e in group.evidence if e.line is not None]
    return ", ".join(dict.fromkeys(located[:limit])) or group.source


def budget_rows(topology: Topology) -> list[list[str]]:
    rows = [
        [
            "group",
            "server model",
            "hosts x containers x processes x per-process",
            "steady",
            "worst",
            "evidence",
        ]
    ]
    rows.extend(
        [
            g.name,
            g.server_model,
            shape(g),
            _steady(g.demand),
            budget.worst_text(g.demand),
            evidence_of(g),
        ]
        for g in topology.groups
    )
    if topology.pgbouncer is not None and any(g.policy.via_pgbouncer for g in topology.groups):
        p = topology.pgbouncer
        pool = p.default_pool_size or (
            "?(pgbouncer.default_pool_size)" if p.per_host else budget.PGBOUNCER_DEFAULT_POOL_SIZE
        )
        rows.append(
            [
                f"({p.service})",
                f"pgbouncer {p.pool_mode or '(pool mode not in the repository)'}",
                f"{'per host: ' if p.per_host else ''}{max(1, len(p.pairs))} pair x pool {pool}",
                "",
                "unknown" if p.capacity is None else str(p.capacity),
                "server side: caps the groups above"
                + (" on each of their hosts" if p.per_host else ""),
            ]
        )
    demand = topology.demand
    if demand is not None:
        rows.append(["total (server)", "", "", str(demand.steady), budget.worst_text(demand), ""])
    return rows


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def units_text(topology: Topology) -> list[str]:
    """Every deployment unit found, kept or dropped, with why."""
    if not topology.units:
        return [f"Deployment: {source}" for source in topology.sources]
    out = ["Deployment units:"]
    for unit in sorted(topology.units, key=lambda u: not u.kept):
        where = ", ".join(unit.paths)
        label = where if unit.name == where else f"{unit.name} ({where})"  # the name --unit takes
        out.append(f"  {'kept' if unit.kept else 'dropped':<8} {label}: {unit.why}")
    return out


def slots_text(topology: Topology) -> list[str]:
    s = topology.slots
    out = [f"Usable slots: {s.usable if s.usable is not None else 'unknown'} = {s.formula}"]
    if s.role:
        su = {True: "a superuser", False: "not a superuser", None: "superuser or not: unknown"}[
            s.role_is_superuser
        ]
        if s.role_is_superuser and s.role_evidence:
            # The official postgres image makes POSTGRES_USER a superuser: no slot is reserved from it.
            where = ", ".join(dict.fromkeys(e.location() for e in s.role_evidence))
            su += f": the postgres image's POSTGRES_USER, so all of max_connections is usable; {where}"
        out.append(f"  application role: {s.role} ({su})")
    demand = topology.demand
    if demand is not None:
        usable = s.usable if s.usable is not None else s.usable_if_default
        unknown = budget.unknown_groups(topology)
        if demand.unknown and not topology.groups:
            out.append(
                "Headroom: unknown: the repository does not say which processes run (see PGS014)"
            )
        elif demand.unknown and not unknown and topology.pgbouncer is not None:
            out.append(
                f"Headroom: unknown: the pgbouncer on each host ({topology.pgbouncer.service}) caps what "
                f"its groups open, with a pool size the repository does not set; the direct groups take "
                f"steady {demand.steady} of {usable}. Set --assume pgbouncer.default_pool_size=N."
            )
        elif demand.unknown:
            names = ", ".join(g.name for g in unknown)
            out.append(
                f"Headroom: unknown: {len(unknown)} group(s) pgslots cannot model ({names}); the others take "
                f"steady {demand.steady}, worst {budget.known_worst(topology)} of {usable}. Set --assume NAME.processes=N "
                "and --assume NAME.per_process=N for each."
            )
        elif (headroom := topology.headroom()) is not None:
            steady, worst = headroom
            out.append(
                f"Headroom: steady {steady}"
                + ("; worst case: none (demand unbounded)" if worst is None else f", worst {worst}")
                + ("" if s.usable is not None else " [with the default max_connections]")
            )
    return out


def render_text(diagnosis: Diagnosis) -> str:
    t = diagnosis.topology
    assert t is not None
    out = [f"pgslots audit {t.root}"]
    if t.django and t.django.settings_module:
        out.append(f"Settings: {t.django.settings_module} ({t.django.choice})")
    out += units_text(t)
    versions = ", ".join(
        f"{v.package} {v.version}"
        for v in t.versions
        if v.package in ("django", "psycopg", "psycopg2", "celery", "gunicorn", "uvicorn")
    )
    if versions:
        out.append(f"Versions: {versions}")
    out += ["", "Connection budget (per database server)", table(budget_rows(t)), ""]
    for g in t.groups:
        if g.demand.formula and g.concurrency_model != "none":
            out.append(f"  {g.name}: {g.demand.formula}")
    out += [""] + slots_text(t)
    if t.unknowns:
        out += ["", "Unknowns (the budget takes each at its floor; set with --assume NAME=VALUE):"]
        for u in t.unknowns:
            if u.name.startswith("settings."):
                out.append(f"  {u.name:<32} {u.question}")  # a setting, not a count: no floor
                continue
            adds = "" if is_server_count(u.name) else f"; each one more adds {_adds(u)} at worst"
            out.append(f"  {u.name:<32} floor {u.floor_value}{adds} - {u.question}")
    if t.assumptions:
        out.append("Assumed: " + ", ".join(f"{k}={v}" for k, v in t.assumptions.items()))
    out += ["", f"Findings ({len(diagnosis.findings)})"]
    out += finding_lines(diagnosis.findings)
    out += [
        "",
        "Remedies (by effort, then risk; predicted = the budget model re-run with the change)",
    ]
    for r in diagnosis.remedies:
        predicted = (
            f"steady {r.predicted.steady}, worst {budget.worst_text(r.predicted)}"
            if r.predicted
            else "n/a"
        )
        fits = " (fits)" if r.fits else ""
        out.append(f"  {r.code} effort {r.effort} risk {r.risk}  {r.title}")
        out.append(f"      change: {r.change}")
        out.append(f"      predicted: {predicted}{fits}")
        for caveat in r.caveats:
            out.append(f"      - {caveat}")
    if t.notes:
        out += ["", "Notes"] + [f"  - {n}" for n in t.notes]
    return "\n".join(out)


def render_markdown(diagnosis: Diagnosis) -> str:
    t = diagnosis.topology
    assert t is not None
    out = [f"## pgslots audit `{t.root}`", ""]
    if t.django and t.django.settings_module:
        out.append(f"Settings: `{t.django.settings_module}` ({t.django.choice})  ")
    out += [f"{line}  " for line in units_text(t)]
    rows = budget_rows(t)
    out += ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    out += [""] + [f"{line}  " for line in slots_text(t)]
    if t.unknowns:
        out += [
            "",
            "**Unknowns** (`--assume NAME=VALUE`): " + ", ".join(f"`{u.name}`" for u in t.unknowns),
        ]
    out += ["", "### Findings", ""]
    out += finding_items_markdown(diagnosis.findings)
    out += [
        "",
        "### Remedies",
        "",
        "| code | effort | risk | remedy | change | predicted steady / worst |",
        "|---|---|---|---|---|---|",
    ]
    for r in diagnosis.remedies:
        predicted = (
            f"{r.predicted.steady} / {budget.worst_text(r.predicted)}" if r.predicted else ""
        )
        out.append(
            f"| {r.code} | {r.effort} | {r.risk} | {r.title} | {r.change.replace('|', '/')} | {predicted} |"
        )
    return "\n".join(out)


def render_json(diagnosis: Diagnosis) -> str:
    data = to_jsonable(diagnosis)
    t = diagnosis.topology
    summary = {}
    if t is not None and t.demand is not None:
        summary = {
            "steady": t.demand.steady,
            "worst": t.demand.worst,
            "bound": t.demand.bound,
            "verdict": verdict(t),
            "unknown_groups": [g.name for g in budget.unknown_groups(t)],
            "usable": t.slots.usable,
            "usable_if_default": t.slots.usable_if_default,
            "unknowns": [u.name for u in t.unknowns],
        }
    return dumps(envelope("audit", {"summary": summary, **data}))


def render_sarif(diagnosis: Diagnosis) -> str:
    checks = load_all_checks()
    used = sorted({f.code for f in diagnosis.findings})
    level = {"error": "error", "warning": "warning", "info": "note"}
    rules = [
        {
            "id": code,
            "name": checks[code].title,
            "shortDescription": {"text": checks[code].title},
            "help": {"text": checks[code].hint},
            "defaultConfiguration": {"level": level[checks[code].severity.value]},
        }
        for code in used
        if code in checks
    ]
    results = []
    for f in diagnosis.findings:
        located = [
            e for e in f.evidence if e.line is not None and not e.path.startswith(("(", "--"))
        ]
        locations = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": e.path, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": e.line},
                }
            }
            for e in located[:3]
        ]
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": level[f.severity.value],
            "message": {"text": f"{f.message} Hint: {f.hint}"},
        }
        if locations:
            result["locations"] = locations
        results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pgslots",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/pgslots/",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "file:///"}},
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)
