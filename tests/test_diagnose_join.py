"""The join on the write-up's incident and deployment, built from the core types: the
numbers, the mapping to process groups, what is already in place, the ranking, the checklist."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from diagnose_samples import CELERY, CSRF, VIEW, at, gathered, topology
from pgslots.deploy.model import ConnectionPolicy, Quantity
from pgslots.diagnose.join import build
from pgslots.diagnose.sources import TOLERANCE_SECONDS, Source, join, match, server_agreement
from pgslots.diagnosis import Diagnosis
from pgslots.events.model import ErrorEvent, FacetRow, SourceRef
from pgslots.events.taxonomy import classify
from pgslots.events.timeline import NOT_SET, build_incident
from pgslots.events.transactions import before_view
from pgslots.events.transactions import kind as transaction_kind
from pgslots.evidence import Evidence
from pgslots.live.model import BackendGroup, RoleInfo, Snapshot
from pgslots.remedy import Change, Remedy
from pgslots.report import diagnose_json, diagnose_markdown, diagnose_text
from pgslots.serde import from_jsonable


def codes(diagnosis: Diagnosis) -> set[str]:
    return {f.code for f in diagnosis.findings}


def test_transaction_names_map_to_kinds():
    assert transaction_kind(CSRF) == "web" and before_view(CSRF)
    assert transaction_kind(VIEW) == "web" and not before_view(VIEW)
    assert transaction_kind(CELERY) == "worker"
    assert transaction_kind("OtherTransaction/Function/manage.py:migrate") == "other"
    assert transaction_kind("/api/v2/captures/") == "web"
    assert transaction_kind("ami.jobs.tasks.run_job") == "worker"
    assert transaction_kind("") == "unattributed"


def test_events_map_to_the_audited_groups():
    diagnosis = build(gathered(hosts=16))
    web, worker = diagnosis.attribution
    assert (web.group, web.kind, web.count, web.before_view, web.audited) == (
        "django",
        "web",
        436,
        435,
        True,
    )
    assert (worker.group, worker.kind, worker.count) == ("celeryworker", "worker", 4)
    assert [t.count for t in web.transactions] == [435, 1]
    assert "PGS401" in codes(diagnosis)


def test_conn_max_age_already_set_is_reported_and_never_proposed():
    diagnosis = build(gathered(hosts=16))
    (persistent,) = diagnosis.in_place
    assert persistent.setting == "CONN_MAX_AGE=60"
    assert persistent.evidence[0].location() == "config/settings/production.py:23"
    assert "leaks under ASGI" in persistent.consequence
    proposed = " ".join(f"{r.title} {r.change}" for r in diagnosis.remedies)
    assert "CONN_MAX_AGE=60" not in proposed
    assert [r.code for r in diagnosis.remedies] == ["R02", "R03", "R05"]  # effort+risk: 2, 4, 7
    assert diagnosis.withheld == ("R01 Persistent connections: already in place (CONN_MAX_AGE=60)",)
    fits = {a.code: a.fits for a in diagnosis.assessments}
    assert fits == {"R02": False, "R03": True, "R05": True}


def test_checklist_settles_what_the_evidence_holds():
    items = {i.key: i for i in build(gathered(hosts=16)).verification}
    assert items["conn_max_age"].answer == "60"
    assert items["conn_max_age"].evidence[0].startswith("config/settings/production.py:23")
    assert items["web_hosts"].answer == "16"
    assert items["web_processes"].answer == "4"
    assert items["role"].answer.startswith("no")
    assert items["server_version"].answer.startswith("15 or older")
    assert items["psycopg"].answer == "3.1.9"
    assert not items["server_settings"].settled
    assert "SHOW max_connections;" in items["server_settings"].how_to_settle
    assert "pg_stat_activity" in items["holders"].how_to_settle
    assert "ATOMIC_REQUESTS" in items["first_query"].how_to_settle


def test_unknown_hosts_are_an_open_item_with_the_assume_key():
    items = {i.key: i for i in build(gathered()).verification}
    assert not items["web_hosts"].settled
    assert "--assume web.hosts=N" in items["web_hosts"].how_to_settle


def test_budget_and_incident_agree_when_the_worst_case_is_unbounded():
    diagnosis = build(gathered(hosts=16))
    cap = diagnosis.capacity
    assert (cap.usable, cap.steady, cap.worst_unbounded) == (97, 80, True)
    assert "PGS404" in codes(diagnosis)
    assert "PGS410" in codes(
        diagnosis
    )  # 15 messages with both wordings, psycopg 3.1.9: libpq's SSL retry


def test_a_fitting_budget_with_failures_is_unexplained():
    g = gathered(hosts=1)
    web, worker = g.topology.groups
    bounded = dataclasses.replace(web, demand=dataclasses.replace(web.demand, worst=8))
    g.topology = dataclasses.replace(g.topology, groups=(bounded, worker))
    diagnosis = build(g)
    assert "PGS405" in codes(diagnosis) and "PGS404" not in codes(diagnosis)
    assert "PGS413" not in codes(diagnosis)  # no observed peak
    watched = [Snapshot(taken_at=at(22, 30), target="host=db", client_backends=31)]
    g.watch, g.watch_path = watched, "burst.jsonl"
    (finding,) = [f for f in build(g).findings if f.code == "PGS413"]
    assert "7 more than the audited worst case 24" in finding.message


def test_live_snapshot_overrides_defaults_and_contradictions_are_reported():
    snapshot = Snapshot(
        taken_at=at(23, 5),
        target="host=db user=app password=****",
        server_version="16.4",
        max_connections=200,
        superuser_reserved_connections=3,
        reserved_connections=5,
        role=RoleInfo("app", True, True, None),
        usable_for_role=192,
        client_backends=120,
        backends=(BackendGroup("app", "app", "", "10.0.0.7", "idle", 90, 640.0),),
    )
    diagnosis = build(gathered(hosts=16, snapshot=snapshot))
    assert diagnosis.capacity.usable == 192 and diagnosis.capacity.max_connections == 200
    assert {"PGS406", "PGS407"} <= codes(diagnosis)  # superuser role, PG16 vs the pre-16 wording
    items = {i.key: i for i in diagnosis.verification}
    assert (
        items["server_settings"].settled
        and "max_connections 200" in items["server_settings"].answer
    )
    assert items["idle"].answer == "90 idle client backends, the oldest idle for 640 s"


def test_watch_record_from_another_time_zone_is_noted():
    shifted = [
        Snapshot(
            taken_at=at(18, 20 + i),
            target="host=db",
            client_backends=50 + i,
            max_connections=100,
            superuser_reserved_connections=3,
        )
        for i in range(10)
    ]
    diagnosis = build(gathered(hosts=16, watch=shifted, watch_path="burst.jsonl"))
    (finding,) = [f for f in diagnosis.findings if f.code == "PGS408"]
    assert "4 h apart" in finding.message


def test_an_audit_that_finds_no_web_group_is_a_finding():
    g = gathered(hosts=16)
    g.topology = dataclasses.replace(g.topology, groups=g.topology.groups[1:])
    diagnosis = build(g)
    assert "PGS402" in codes(diagnosis)
    web = diagnosis.attribution[0]
    assert web.kind == "web" and not web.audited


def test_json_round_trips_and_renderers_say_the_numbers():
    diagnosis = build(gathered(hosts=16))
    data = json.loads(diagnose_json.render(diagnosis))
    assert data["schema"] == "pgslots/1" and data["command"] == "diagnose"
    assert from_jsonable(Diagnosis, data) == diagnosis
    markdown = diagnose_markdown.render(diagnosis)
    for heading in (
        "## Observation",
        "## Interpretation",
        "## Contributors (verified)",
        "## What we still need to verify",
        "## Directions (ordered by effort and risk)",
    ):
        assert heading in markdown
    for number in (
        "**440**",
        "| 22:22 | 4 |",
        "| 22:27 | 152 |",
        "| 22:32 | 284 |",
        "402 ×",
        "22 ×",
        "15 ×",
    ):
        assert number in markdown, number
    assert "`CONN_MAX_AGE=60` (`config/settings/production.py:23`" in markdown
    text = diagnose_text.render(diagnosis)
    assert "440" in text and "**" not in text


def test_no_pool_and_no_persistence_means_nothing_in_place():
    g = gathered(hosts=16)
    groups = tuple(dataclasses.replace(grp, policy=ConnectionPolicy()) for grp in g.topology.groups)
    g.topology = dataclasses.replace(topology(16), groups=groups)
    diagnosis = build(g)
    assert diagnosis.in_place == ()
    assert "R01" in [r.code for r in diagnosis.remedies]


def test_a_remedy_whose_changes_already_hold_is_withheld():
    g = gathered(hosts=16)
    g.remedies = [
        *g.remedies,
        Remedy(
            "R90",
            "Keep connections for a minute",
            1,
            1,
            "",
            "CONN_MAX_AGE = 60",
            changes=(Change("django", "policy.conn_max_age", 60),),
        ),
        Remedy(
            "R91",
            "Ten in flight per worker",
            2,
            2,
            "",
            "limit_concurrency=10",
            changes=(Change("django", "per_process", 10),),
        ),
    ]
    diagnosis = build(g)
    proposed = [r.code for r in diagnosis.remedies]
    assert "R90" not in proposed and "R91" in proposed
    assert any(
        w.startswith("R90 ") and "django policy.conn_max_age=60" in w for w in diagnosis.withheld
    )


def test_the_repository_s_server_version_against_the_wording():
    g = gathered(hosts=16)
    slots = dataclasses.replace(
        g.topology.slots,
        server_version=Quantity(16, (Evidence("docker-compose.yml", 4, "image: postgres:16"),)),
    )
    g.topology = dataclasses.replace(g.topology, slots=slots)
    (finding,) = [f for f in build(g).findings if f.code == "PGS407"]
    assert "the repository configures PostgreSQL 16" in finding.message
    assert finding.evidence[0].location() == "docker-compose.yml:4"


# -- several sources of one incident (issue 11 point 3) ------------------------------------------

LAB_INCIDENT = Path(__file__).resolve().parent / "fixtures" / "lab-incident"  # make_lab_incident.py


def _diagnose_json(*paths: Path) -> dict:
    args = [a for p in paths for a in ("--events", str(p))]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgslots",
            "diagnose",
            *args,
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _apm_failures(export: Path) -> int:
    """The failures the application saw, counted from the export itself: its error events."""
    results = json.loads(export.read_text())["data"]["actor"]["account"]["nrql"]["results"]
    return sum(1 for row in results if classify(row["error.message"]))


def _server_refusals(csvlog: Path) -> Counter[str]:
    """The server's slot refusals, by role, counted from the csvlog's own rows."""
    refused: Counter[str] = Counter()
    with csvlog.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if row[11] == "FATAL" and any(c.is_slot_exhaustion for c in classify(row[13], row[12])):
                refused[row[1]] += 1
    return refused


def test_a_lab_run_s_failures_are_reported_once_from_three_sources():
    """APM export + server csvlog + the worker's log of one real lab run: the distinct failures
    once (the APM's count), the others matched to them, no invented process group."""
    export, csvlog, worker = (
        LAB_INCIDENT / "nerdgraph.json",
        LAB_INCIDENT / "postgresql.csv",
        LAB_INCIDENT / "worker.log",
    )
    failures, refused = _apm_failures(export), _server_refusals(csvlog)
    report = _diagnose_json(export, csvlog, worker)
    incident = report["incident"]
    assert incident["total"] == failures == _diagnose_json(export)["incident"]["total"]
    assert incident["total"] < failures + sum(refused.values())  # joined, not stacked
    sources = {s["source"]: s for s in report["sources"]}
    server = sources["server log"]
    assert server["events"] == sum(refused.values())
    assert server["reached"] + server["headline_unmatched"] == failures
    assert server["matched"] + sum(server["unmatched_by"].values()) == server["events"]
    assert f"{server['events']} refusals in the server log" in server["text"]
    assert f"{server['reached']} reached the application (APM)" in server["text"]
    app_log = sources["application log"]
    assert (
        app_log["matched"] == app_log["events"] > 0
    )  # the worker's failed tasks are the APM's too
    kinds = {a["kind"] for a in report["attribution"]}
    assert kinds <= {"web", "worker"} and sum(a["count"] for a in report["attribution"]) == failures
    # The server log adds what only it has: backends over time and the roles it refused.
    assert report["incident"]["server_log"]["rejections_by"]["user"] == dict(refused.most_common())
    assert any(
        series["source"] == "server log" and series["path"] == str(csvlog)
        for series in report["backends"]
    )


def test_the_server_log_alone_is_no_process_group():
    report = _diagnose_json(LAB_INCIDENT / "postgresql.csv")
    assert report["incident"]["total"] == sum(
        _server_refusals(LAB_INCIDENT / "postgresql.csv").values()
    )
    assert report["attribution"] == [] and report["sources"] == []


def _event(second: float, message: str, count: int = 1, **fields) -> ErrorEvent:
    ts = dt.datetime(2026, 11, 25, 15, 12, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=second)
    return ErrorEvent(
        ts=ts,
        message=message,
        source=SourceRef("x", "x", 1),
        count=count,
        categories=classify(message),
        **fields,
    )


def _source(kind: str, events: list[ErrorEvent]) -> Source:
    return Source(kind, [f"{kind}.log"], build_incident(events), events)


TOO_MANY = "FATAL:  sorry, too many clients already"
RESERVED = "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute"


def test_retries_and_other_clients_are_told_apart():
    """Two refusals in one message are one failure (libpq's retry without SSL); refusals no
    application failure accounts for are listed by role; times further apart than the
    tolerance do not match."""
    app = [
        _event(0, f"connection failed: {TOO_MANY}\n{RESERVED}", 3),
        _event(10, RESERVED, 5),
        _event(40, RESERVED),
    ]
    server = [
        _event(0.4, TOO_MANY, 3, user="app"),
        _event(0.6, RESERVED, 3, user="app"),
        _event(10.2, RESERVED, 5, user="app"),
        _event(11, TOO_MANY, 4, user="report"),
        _event(40 + TOLERANCE_SECONDS + 1, RESERVED, 1, user="app"),
    ]
    agreement = server_agreement(_source("apm", app), _source("server", server))
    assert (agreement.events, agreement.matched, agreement.reached, agreement.retries) == (
        16,
        11,
        8,
        3,
    )
    assert agreement.unmatched_by == {"report": 4, "app": 1} and agreement.headline_unmatched == 1
    assert (
        "16 refusals in the server log" in agreement.text
        and "8 reached the application (APM)" in agreement.text
    )
    assert "3 were second attempts" in agreement.text and "role report 4" in agreement.text


def test_match_pairs_as_many_as_the_tolerance_allows():
    left = [(0.0, 2, 0), (5.0, 1, 1)]
    right = [(1.0, 1, 0), (1.5, 2, 1), (9.0, 1, 2)]
    matched_left, matched_right = match(left, right, 2.0)
    assert matched_right == {0: 1, 1: 1} and matched_left == {0: 2}


def test_the_headline_is_the_source_closest_to_the_application():
    app = _source("apm", [_event(i, RESERVED) for i in range(12)])
    log = _source("applog", [_event(i, RESERVED) for i in range(12)])
    server = _source("server", [_event(i + 0.5, RESERVED, user="app") for i in range(12)])
    incident, agreements = join([server, log, app])
    assert incident is app.incident or incident.total == 12
    assert [a.source for a in agreements] == ["application log", "server log"]


def test_an_unset_host_is_not_a_host():
    g = gathered()
    g.incident = dataclasses.replace(
        g.incident,
        facets={
            **g.incident.facets,
            "host": (FacetRow("web-1", 300, 300 / 440), FacetRow(NOT_SET, 140, 140 / 440)),
        },
    )
    items = {i.key: i for i in build(g).verification}
    assert items["web_hosts"].answer == "at least 1 (distinct hosts in the failing events)"
