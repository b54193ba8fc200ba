"""Acceptance of the lab on real servers: the baseline reproduces the incident's signature,
and each remedy moves the measurements the way the domain predicts, under the same load.

One lab run (one PostgreSQL) serves every test of this module: baseline, conn-max-age-0,
django-pool and pgbouncer at 0.6 of the default duration (12 s of load each, 3 s stages).
Assertions read the run's artifacts (samples, New Relic-format events through `pgslots
events`), never constants: caps come from the scenario's own sizes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pgslots.cli.events
import pgslots.cli.lab  # noqa: F401 - registers `lab`
from conftest import require
from pgslots.cli import app
from pgslots.lab.analysis import events_command_line
from pgslots.lab.pgbouncer import find_pgbouncer
from pgslots.lab.results import WEB_APP, ScenarioResult
from pgslots.lab.run import APP_ROLE, Lab, LabOptions
from pgslots.lab.scenarios import DEFAULT_LOAD, SCENARIOS, scaled_load

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DURATION = 0.6  # 3 s stages: the error curve's buckets are whole seconds
PGBOUNCER_POOL = 4  # small enough that clients must wait at the burst's peak


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioResult]:
    out = tmp_path_factory.mktemp("lab")
    chosen = [SCENARIOS["baseline"], SCENARIOS["conn-max-age-0"], SCENARIOS["django-pool"]]
    if find_pgbouncer() is not None:
        chosen.append(
            dataclasses.replace(SCENARIOS["pgbouncer"], pgbouncer_pool_size=PGBOUNCER_POOL)
        )
    lab = Lab(LabOptions(), scaled_load(DEFAULT_LOAD, 1.0, duration=DURATION))
    results = lab.run(chosen, out)
    return {r.scenario: r for r in results if isinstance(r, ScenarioResult)}


def samples(result: ScenarioResult) -> list[dict]:
    path = Path(result.artifacts) / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def events_json(result: ScenarioResult, source: Path | None = None) -> dict:
    """The baseline's evidence as `pgslots events` reads it (the CLI, JSON output)."""
    args = events_command_line(Path(result.artifacts), source)
    outcome = CliRunner().invoke(app, ["events", *args, "--format", "json"])
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout)


def test_baseline_reproduces_the_signature(run):
    baseline = run["baseline"]
    incident = events_json(baseline)
    families = incident["by_category"]
    # Both FATAL families, as in the write-up (402 reserved, 22 too many, 15 both).
    assert families.get("reserved_superuser", 0) > 0, families
    assert families.get("too_many_clients", 0) > 0, families
    # Most failed web requests failed before the view ran (named after a middleware).
    note = next(n for n in incident["notes"] if n["key"] == "before_view")
    assert note["share"] > 0.5, note
    assert 0 < note["count"] <= baseline.web_errors_before_view <= baseline.web_errors
    # A growing error curve (read from the event times: the same at any bucket), the label
    # the lab recorded for its demo.
    assert incident["shape"]["label"] == "sustained_growth", incident["shape"]
    assert baseline.error_shape == incident["shape"]["label"]
    # Client backends stay high after the burst: idle web connections nobody reuses. A
    # process that reused its persistent connection would hold at most one; more idle web
    # connections than web processes is the ASGI leak itself (how many more depends on
    # when the garbage collector runs, so the bound is the process count, not a share).
    last = samples(baseline)[-1]
    assert last["idle_by_app"].get(WEB_APP, 0) > SCENARIOS["baseline"].web_processes
    assert baseline.oldest_idle_after_burst > 0
    # The server's own log, read by `pgslots events`, shows both families too, and whom
    # it refused: the web app's non-superuser role above all.
    server = events_json(baseline, Path(baseline.artifacts) / "postgres" / "postgresql.csv")
    assert server["by_category"].get("reserved_superuser", 0) > 0
    assert server["by_category"].get("too_many_clients", 0) > 0
    refused = server["server_log"]["rejections_by"]["user"]
    assert refused.get(APP_ROLE, 0) > sum(n for role, n in refused.items() if role != APP_ROLE)


def test_conn_max_age_0_leaves_no_backend_after_the_burst(run):
    baseline, remedy = run["baseline"], run["conn-max-age-0"]
    assert remedy.web_attempted == baseline.web_attempted  # the same load
    assert remedy.idle_web_after_burst == 0
    assert remedy.backends_after_burst < baseline.backends_after_burst
    assert remedy.web_failed < baseline.web_failed


def test_django_pool_caps_backends_at_processes_times_max_size(run):
    scenario = SCENARIOS["django-pool"]
    remedy = run["django-pool"]
    web_cap = scenario.web_processes * scenario.web_pool["max_size"]
    peak_web = max(s["by_app"].get(WEB_APP, 0) for s in samples(remedy))
    assert 0 < peak_web <= web_cap
    assert remedy.peak_backends <= scenario.cap
    assert remedy.web_failed < run["baseline"].web_failed


def test_pgbouncer_caps_server_backends_while_clients_wait(run):
    require(find_pgbouncer() is not None, "pgbouncer")
    remedy = run["pgbouncer"]
    points = samples(remedy)
    peak_server = max(s["by_user"].get(APP_ROLE, 0) for s in points)
    assert 0 < peak_server <= PGBOUNCER_POOL
    assert max(s["pgbouncer"]["cl_waiting"] for s in points if "pgbouncer" in s) > 0
    assert remedy.web_failed < run["baseline"].web_failed


def test_artifacts_are_kept(run):
    out = Path(run["baseline"].artifacts)
    for name in (
        "requests.jsonl",
        "samples.jsonl",
        "result.json",
        "worker.log",
        "newrelic/events.jsonl",
        "newrelic/nerdgraph.json",
        "newrelic/transactions.jsonl",
        "postgres/postgresql.log",
        "postgres/postgresql.csv",
        "postgres/postgresql.json",
    ):
        assert (out / name).stat().st_size > 0, name
    event = json.loads((out / "newrelic/events.jsonl").read_text().splitlines()[0])
    assert event["error.class"] == "django.db.utils:OperationalError"
    assert event["transactionName"].startswith(
        ("WebTransaction/Function/", "OtherTransaction/Celery/")
    )
    assert isinstance(event["timestamp"], int) and event["timestamp"] > 1_600_000_000_000
    assert (
        ScenarioResult.from_json(json.loads((out / "result.json").read_text())) == run["baseline"]
    )


def test_the_checks_ran_before_each_load_and_the_runs_agree(run):
    """pgslots.django's checks, run on each scenario's settings before its load: the baseline
    is warned of the leak (W003) and its run shows it; the pool's settings are silent and
    its run holds nothing and fails nothing."""
    for result in run.values():
        assert (Path(result.artifacts) / "checks.txt").stat().st_size > 0
    baseline, pool = run["baseline"], run["django-pool"]
    assert "pgslots.W003" in baseline.checks and baseline.checks_verdict().startswith(
        "agrees: warned"
    )
    assert not [c for c in pool.checks if c.startswith(("pgslots.W", "pgslots.E"))]
    assert pool.checks_verdict().startswith("agrees: no warning")
