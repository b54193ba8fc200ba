"""The thin layer between `diagnose` and the other commands' use cases.

Everything `diagnose` needs from the events pipeline, the audit, the probe and the lab goes
through these few functions, so that when one of those parts changes its API only this
module follows. Each returns core types (`Incident`, `Topology`, `Snapshot`, `Remedy`,
`Finding`) and raises `InputError` for input it cannot use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pgslots.deploy.model import Topology
from pgslots.diagnosis import Diagnosis, LabRun, SourceAgreement
from pgslots.errors import InputError
from pgslots.events.model import Incident, InputSummary
from pgslots.findings import Finding
from pgslots.live.model import PgbouncerState, Snapshot
from pgslots.remedy import MeasuredEffect, Remedy
from pgslots.serde import SerdeError, from_jsonable


@dataclasses.dataclass
class EventsResult:
    incident: Incident
    reserved_wordings: dict[str, int] = dataclasses.field(default_factory=dict)
    findings: list[Finding] = dataclasses.field(default_factory=list)
    sources: tuple[SourceAgreement, ...] = ()  # the other sources, matched to `incident`
    inputs: tuple[InputSummary, ...] = ()  # every file read, of every source


@dataclasses.dataclass
class AuditResult:
    topology: Topology
    findings: list[Finding] = dataclasses.field(default_factory=list)
    remedies: list[Remedy] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def events(
    paths: Sequence[Path], tz: str | None, progress: Callable[[int], None] | None
) -> EventsResult:
    """The events pipeline over the files, or a saved `events --format json` output.

    Files are read per kind of source (APM, application log, pgbouncer log, server log) and
    joined, not added up: the count is the source closest to the application's, and the
    others say how they agree with it (`diagnose.sources`)."""
    from pgslots.diagnose.sources import Source, join, kind_of
    from pgslots.events.pipeline import investigate_resolved, resolve_sources
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions
    from pgslots.events.times import parse_zone

    if len(paths) == 1:
        incident = incident_json(paths[0])
        if incident is not None:
            return EventsResult(incident, reserved_wordings(incident), inputs=incident.inputs)
    zone = parse_zone(tz or "UTC")
    by_kind: dict[str, list[tuple[Path, Any]]] = {}
    for path, source in resolve_sources(list(paths)):
        by_kind.setdefault(kind_of(source.name), []).append((path, source))
    sources = []
    for kind, resolved in by_kind.items():
        incident, found = investigate_resolved(
            resolved, ReadOptions(tz=zone, progress=progress), TimelineOptions(tz=zone)
        )
        sources.append(Source(kind, [str(p) for p, _s in resolved], incident, found))
    incident, agreements = join(sources)
    inputs = tuple(i for s in sources for i in s.incident.inputs)
    return EventsResult(incident, reserved_wordings(incident), sources=agreements, inputs=inputs)


def _read_json(path: Path) -> Any | None:
    """The file's JSON value when the whole file is one JSON document, else None."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1)
            if head not in (b"{", b"["):
                return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def incident_json(path: Path) -> Incident | None:
    """An `events --format json` output: the Incident itself or under "incident"."""
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("incident"), dict):
        data = data["incident"]
    if not (isinstance(data, dict) and {"buckets", "by_combination", "total"} <= data.keys()):
        return None
    try:
        return from_jsonable(Incident, data)
    except SerdeError as exc:
        raise InputError(f"not an events JSON output: {exc}", path=str(path)) from None


def reserved_wordings(incident: Incident) -> dict[str, int]:
    """Events per server generation of the reserved-slot wording ("pre16", "16+"), from the
    pipeline's notes (it reads every message), else from a server log's inferred version."""
    found = {
        note.key.removeprefix("reserved_wording_").replace("plus", "+"): note.count
        for note in incident.notes
        if note.key.startswith("reserved_wording_")
    }
    if found:
        return found
    log = incident.server_log
    reserved = incident.by_category.get("reserved_superuser", 0)
    if log is not None and log.inferred_version and reserved:
        if re.search(r"<=?\s*15|^1[0-5]\b", log.inferred_version):
            return {"pre16": reserved}
        if re.search(r">=?\s*16|^(1[6-9]|[2-9]\d)\b", log.inferred_version):
            return {"16+": reserved}
    return {}


class AssumptionError(InputError):
    """A bad `--assume`: a usage error for the whole command, not a note about the repository."""


def audit(repo: Path, assume: dict[str, int]) -> AuditResult:
    """The audit of a repository (`pgslots.audit.run_audit`), or a saved `audit --format json`
    output with the assumptions applied again. A tree that holds no process group (not a
    Django deployment) is input the report cannot use."""
    from pgslots.audit import run_audit

    try:
        result = _audit_json(repo, assume) if repo.is_file() else run_audit(repo, assume or None)
    except InputError as exc:
        if str(exc).startswith("--assume"):
            raise AssumptionError(str(exc)) from None
        raise
    topology = result.topology
    assert topology is not None
    if not topology.groups:
        why = (
            "; ".join(f.message for f in result.findings if f.code == "PGS014")
            or "no process group found"
        )
        raise InputError(f"not a Django deployment pgslots can read: {why}", path=str(repo))
    return AuditResult(topology, list(result.findings), list(result.remedies), list(result.notes))


def _audit_json(path: Path, assume: dict[str, int]) -> Diagnosis:
    """A saved audit, re-run from its topology when assumptions are given (the findings and
    remedies depend on them)."""
    from pgslots.audit import apply_assumptions
    from pgslots.deploy.saved import load_topology  # the probe reads the same file for --topology
    from pgslots.remedies import propose
    from pgslots.rules.audit import audit_findings

    topology = load_topology(path)
    if assume:
        topology = apply_assumptions(topology, assume)
        return Diagnosis(
            inputs=(),
            topology=topology,
            findings=tuple(audit_findings(topology)),
            remedies=tuple(propose(topology)),
            notes=topology.notes,
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        findings = tuple(
            from_jsonable(Finding, f, f"findings[{i}]")
            for i, f in enumerate(data.get("findings") or ())
        )
        remedies = tuple(
            from_jsonable(Remedy, r, f"remedies[{i}]")
            for i, r in enumerate(data.get("remedies") or ())
        )
    except (ValueError, AttributeError, SerdeError) as exc:
        raise InputError(f"not an audit JSON output: {exc}", path=str(path)) from None
    return Diagnosis(
        inputs=(), topology=topology, findings=findings, remedies=remedies, notes=topology.notes
    )


def probe(
    dsn: str, pgbouncer_dsn: str | None, topology: Topology | None
) -> tuple[Snapshot, list[Finding]]:
    """One read-only snapshot (the probe's careful single connection), with the live rules'
    findings. A server that refuses because it is full gives a snapshot with `refused` set:
    that is evidence, not an error. An unreachable server or a bad DSN raises InputError."""
    from pgslots.live.connect import ConnectSettings
    from pgslots.live.probe import ProbeRequest
    from pgslots.live.probe import probe as take_probe
    from pgslots.live.snapshot import SnapshotOptions
    from pgslots.rules.live import check_snapshot

    snapshot = take_probe(
        ProbeRequest(
            ConnectSettings(dsn),
            pgbouncer_dsn=pgbouncer_dsn,
            options=SnapshotOptions(topology=topology),
        )
    )
    return snapshot, check_snapshot(snapshot)


def pgbouncer(dsn: str) -> PgbouncerState:
    from pgslots.live.pgbouncer import read_pgbouncer

    return read_pgbouncer(dsn)


def pgbouncer_snapshot(state: PgbouncerState) -> tuple[Snapshot, list[Finding]]:
    """A snapshot that holds only pgbouncer's state (no server DSN given), with the live
    rules' findings about it."""
    from pgslots.rules.live import check_snapshot

    snapshot = Snapshot(
        taken_at=dt.datetime.now(dt.timezone.utc), target=state.target, pgbouncer=state
    )
    return snapshot, check_snapshot(snapshot)


def watch_record(path: Path) -> tuple[list[Snapshot], int]:
    """(snapshots oldest first, malformed lines skipped) of a `watch --record` file or of one
    `probe --format json` output."""
    from pgslots.live.record import load_snapshot, read_records

    skipped: list[int] = []
    try:
        snapshots = read_records(path, on_skip=lambda line, _reason: skipped.append(line))
    except UnicodeDecodeError:
        raise InputError(
            "not a text file (expected JSON Lines of snapshots)", path=str(path)
        ) from None
    if not snapshots:
        return [load_snapshot(path)], 0  # one probe JSON document spread over several lines
    return sorted(snapshots, key=lambda s: s.taken_at), len(skipped)


def lab_run(path: Path) -> tuple[LabRun, dict[str, MeasuredEffect]]:
    from pgslots.diagnose import labrun

    return labrun.read(path)
