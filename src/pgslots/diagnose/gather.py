"""Run the parts `diagnose` has input for, and keep every failure as a note.

Each input is optional. A part that cannot use its input (an unreadable file, a repository
that is not a Django project, a DSN that refuses) does not stop the others: its
`InputStatus` says what went wrong, a PGS409 finding reports it, and the report is built
from the rest. Only a usage error (no input at all, a malformed --assume) stops the command.

Besides raw inputs, each option accepts the JSON the matching command writes, so saved
results can be joined later, offline: `--events` an `events --format json` Incident,
`--repo` an `audit --format json` file (its "topology"), `--watch-record` a `watch --record`
JSON Lines file or one `probe --format json` Snapshot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from pgslots.diagnose import parts
from pgslots.diagnose.context import Gathered
from pgslots.diagnosis import InputStatus
from pgslots.errors import InputError
from pgslots.redact import redact_dsn

ADDS = {
    "events": "`--events FILE` (New Relic or Sentry exports, PostgreSQL server logs) would add what failed, "
    "when, with which refusal wording and in which transactions",
    "repo": "`--repo PATH` would add the process groups and their connection demand with file:line evidence, "
    "and the remedies with their predicted effect",
    "dsn": "`--dsn DSN` would add the live settings (max_connections, reserved slots, version), whether the "
    "application's role is a superuser, and who holds the slots now",
    "pgbouncer": "`--pgbouncer DSN` (its admin console) would add pgbouncer's pools, waiting clients and "
    "server-side capacity",
    "watch-record": "`--watch-record FILE` (from `pgslots watch --record FILE`) would add client backends over "
    "time against the usable slots",
    "lab-run": "`--lab-run DIR` (from `pgslots lab --out DIR`) would add each remedy's effect measured on a real "
    "reproduction",
}


@dataclasses.dataclass
class Request:
    """What the user gave `pgslots diagnose`."""

    events: Sequence[Path] = ()
    repo: Path | None = None
    dsn: str | None = None
    pgbouncer: str | None = None
    watch_record: Path | None = None
    lab_run: Path | None = None
    assume: dict[str, int] = dataclasses.field(default_factory=dict)
    tz: str | None = None  # zone of event timestamps written without one
    progress: Callable[[int], None] | None = None

    def given(self) -> dict[str, bool]:
        return {
            "events": bool(self.events),
            "repo": self.repo is not None,
            "dsn": self.dsn is not None,
            "pgbouncer": self.pgbouncer is not None,
            "watch-record": self.watch_record is not None,
            "lab-run": self.lab_run is not None,
        }


def _attempt(g: Gathered, kind: str, action: Callable[[], str]) -> None:
    """Run one part; its success or its failure becomes the input's status."""
    try:
        detail = action()
        g.inputs.append(InputStatus(kind, True, detail, ok=True, adds=ADDS[kind]))
    except parts.AssumptionError:
        raise
    except InputError as exc:
        g.inputs.append(InputStatus(kind, True, str(exc), ok=False, adds=ADDS[kind]))


def gather(request: Request) -> Gathered:
    given = request.given()
    if not any(given.values()):
        raise InputError(
            "nothing to diagnose: give at least one of --events, --repo, --dsn, --watch-record, --lab-run"
        )
    g = Gathered(assumptions=dict(request.assume), now=dt.datetime.now(dt.timezone.utc))

    # The repository first: the probe compares live backends with its process groups.
    if request.repo is not None:
        _attempt(g, "repo", lambda: _repo(g, request))
    if request.events:
        _attempt(g, "events", lambda: _events(g, request))
    if request.dsn is not None or request.pgbouncer is not None:
        if request.dsn is not None:
            _attempt(g, "dsn", lambda: _probe(g, request))
        if request.pgbouncer is not None:
            _attempt(g, "pgbouncer", lambda: _pgbouncer(g, request))
    watch_record, lab_run = request.watch_record, request.lab_run
    if watch_record is not None:
        _attempt(g, "watch-record", lambda: _watch(g, watch_record))
    if lab_run is not None:
        _attempt(g, "lab-run", lambda: _lab(g, lab_run))
    if not any(s.ok for s in g.inputs):
        raise InputError(
            "no input could be used: " + "; ".join(f"{s.kind}: {s.detail}" for s in g.inputs)
        )
    if request.assume and request.repo is None:
        g.notes.append(
            "--assume was given without --repo: the assumptions apply to an audited topology, so they were not used."
        )
    for kind, was_given in given.items():
        if not was_given:
            g.inputs.append(InputStatus(kind, False, "", ok=True, adds=ADDS[kind]))
    order = list(ADDS)
    g.inputs.sort(key=lambda s: order.index(s.kind))
    return g


def _repo(g: Gathered, request: Request) -> str:
    assert request.repo is not None
    result = parts.audit(request.repo, request.assume)
    g.topology = result.topology
    g.findings += result.findings
    g.remedies += result.remedies
    g.notes += result.notes
    groups = (
        ", ".join(f"{grp.name} ({grp.server_model})" for grp in result.topology.groups)
        or "no process group"
    )
    return f"{request.repo}: {groups}" + (
        f"; settings {result.topology.settings_module}" if result.topology.settings_module else ""
    )


def _events(g: Gathered, request: Request) -> str:
    result = parts.events(list(request.events), request.tz, request.progress)
    g.incident = result.incident
    g.sources = result.sources
    g.reserved_wordings = dict(result.reserved_wordings)
    g.findings += result.findings
    described = "; ".join(
        f"{i.path}: {i.events} events ({i.format})"
        + (f", {i.skipped} malformed records skipped" if i.skipped else "")
        for i in result.inputs
    )
    if result.sources:
        described += (
            f"; one incident seen from {len(result.sources) + 1} sources: the count is "
            f"{result.incident.total}, from the source closest to the application, the others matched to it"
        )
    return described or f"{result.incident.total} events"


def _probe(g: Gathered, request: Request) -> str:
    assert request.dsn is not None
    snapshot, findings = parts.probe(request.dsn, request.pgbouncer, g.topology)
    g.snapshot = snapshot
    g.findings += findings
    if snapshot.refused is not None:
        # Evidence, not a failure: the server is full for this role right now.
        first = snapshot.refused.message.strip().splitlines()[0]
        g.notes.append(
            f"The probe was refused by {snapshot.target}: {first}. {snapshot.refused.who_could_connect}"
        )
        return f"{snapshot.target}: refused the probe ({snapshot.refused.category}): the server is full for this role now"
    return f"{snapshot.target}: PostgreSQL {snapshot.server_version}, {snapshot.client_backends} client backends"


def _pgbouncer(g: Gathered, request: Request) -> str:
    """pgbouncer's admin console: read by the probe when --dsn is given too, else alone (a
    snapshot that holds only pgbouncer's state, and the live rules about it)."""
    assert request.pgbouncer is not None
    state = g.snapshot.pgbouncer if g.snapshot is not None else None
    if state is None:
        state = parts.pgbouncer(request.pgbouncer)
        if g.snapshot is not None:
            g.snapshot = dataclasses.replace(g.snapshot, pgbouncer=state)
        else:
            snapshot, findings = parts.pgbouncer_snapshot(state)
            g.snapshot = snapshot
            g.findings += findings
    capacity = (
        f", server-side capacity {state.server_side_capacity}"
        if state.server_side_capacity is not None
        else ""
    )
    return (
        f"{state.target or redact_dsn(request.pgbouncer)}: {state.version or state.kind}, {len(state.pools)} pools, "
        f"{state.clients_waiting} clients waiting{capacity}"
    )


def _watch(g: Gathered, path: Path) -> str:
    snapshots, skipped = parts.watch_record(path)
    g.watch = snapshots
    g.watch_path = str(path)
    if g.snapshot is None:
        # The record's latest complete snapshot stands in for a probe: same server, same settings.
        complete = [s for s in snapshots if s.max_connections is not None and s.refused is None]
        if complete:
            g.snapshot = max(complete, key=lambda s: s.taken_at)
    first, last = min(s.taken_at for s in snapshots), max(s.taken_at for s in snapshots)
    skipped_text = f", {skipped} malformed lines skipped" if skipped else ""
    return f"{path}: {len(snapshots)} snapshots, {first:%Y-%m-%d %H:%M:%S}-{last:%H:%M:%S} UTC{skipped_text}"


def _lab(g: Gathered, path: Path) -> str:
    run, measured = parts.lab_run(path)
    g.lab = run
    g.measured = dict(measured)
    g.notes += [f"lab run: {note}" for note in run.notes]
    return f"{path}: {len(run.scenarios)} scenarios measured ({', '.join(s.name for s in run.scenarios)})"
