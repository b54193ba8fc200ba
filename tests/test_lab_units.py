"""The lab's parts that need no database: the open-loop driver (against a real slow HTTP
server), the scenario arithmetic, the New Relic export shape, and the CLI's refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import io
import json

import pytest
from typer.testing import CliRunner

import pgslots.cli.lab as lab_cli
from pgslots.cli import app
from pgslots.lab.load import Driver, arrivals, percentile
from pgslots.lab.nrexport import write_exports
from pgslots.lab.scenarios import DEFAULT_LOAD, SCENARIOS, LoadPlan, Stage, resolve, scaled_load


def test_arrivals_follow_each_stage_rate():
    plan = LoadPlan(stages=(Stage(10, 5, 1), Stage(10, 20, 2)))
    web = arrivals(plan, "web")
    assert web == sorted(web) and web == arrivals(plan, "web")  # seeded: the same load every run
    first = sum(1 for t in web if t < 10)
    second = len(web) - first
    assert 30 <= first <= 70 and 150 <= second <= 250  # Poisson around 50 and 200
    assert all(0 <= t < plan.load_seconds for t in web)


def test_default_burst_grows_stage_by_stage():
    rates = [s.web_rate for s in DEFAULT_LOAD.stages]
    assert rates == sorted(rates) and rates[-1] >= 4 * rates[0]


async def _slow_server(delay: float):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _drive(plan: LoadPlan, delay: float) -> Driver:
    async def main() -> Driver:
        server = await _slow_server(delay)
        port = server.sockets[0].getsockname()[1]
        driver = Driver(
            plan,
            host="127.0.0.1",
            port=port,
            path="/",
            session_cookies=["s=1"],
            publish_task=None,
            out=io.StringIO(),
        )
        async with server:
            await driver.run()
        return driver

    return asyncio.run(main())


def test_driver_is_open_loop():
    """Arrivals do not wait for answers: with 1 s responses at 20/s, about 20 requests are in
    flight at once (a closed loop of one user would never exceed 1)."""
    driver = _drive(LoadPlan(stages=(Stage(2.0, 20.0, 0.0),), request_timeout=10), delay=1.0)
    assert driver.peak_in_flight >= 10
    web = [o for o in driver.outcomes if o.kind == "web"]
    assert web and all(o.status == 200 for o in web)
    assert min(o.latency for o in web) >= 0.9


def test_driver_cap_drops_instead_of_queueing():
    driver = _drive(
        LoadPlan(stages=(Stage(1.5, 20.0, 0.0),), max_in_flight=3, request_timeout=10), delay=1.0
    )
    assert driver.peak_in_flight == 3
    assert any(o.error == "dropped" for o in driver.outcomes)


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (
        percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([], 50) is None
    )


def test_caps_follow_the_sizes():
    pool = SCENARIOS["django-pool"]
    assert pool.cap == pool.web_processes * pool.web_pool["max_size"] + pool.celery_concurrency
    assert SCENARIOS["baseline"].cap is None  # ASGI with persistent connections: unbounded
    gthread = SCENARIOS["wsgi-gthread"]
    assert gthread.cap == gthread.web_processes * gthread.threads + gthread.celery_concurrency
    for scenario in SCENARIOS.values():
        if scenario.cap is not None and scenario.name != "limit-concurrency":
            assert scenario.cap <= scenario.usable_slots, scenario.name  # remedies fit the budget


def test_scale_moves_every_size_together():
    doubled = SCENARIOS["django-pool"].scaled(2)
    assert (
        doubled.max_connections == 40
        and doubled.web_processes == 4
        and doubled.celery_concurrency == 8
    )
    assert doubled.cap == 2 * SCENARIOS["django-pool"].cap
    plan = scaled_load(DEFAULT_LOAD, 2, duration=0.6)
    assert plan.load_seconds == DEFAULT_LOAD.load_seconds * 0.6
    assert [s.web_rate for s in plan.stages] == [2 * s.web_rate for s in DEFAULT_LOAD.stages]
    assert plan.task_batch == 2 * DEFAULT_LOAD.task_batch  # one task per Celery child
    # stages stay whole seconds, so that the error curve's buckets match them
    assert [s.seconds for s in scaled_load(DEFAULT_LOAD, 1, duration=0.25).stages] == [1.0] * 4


def test_resolve_names():
    assert [s.name for s in resolve("all")] == list(SCENARIOS)
    assert [s.name for s in resolve("baseline,pgbouncer")] == ["baseline", "pgbouncer"]
    with pytest.raises(KeyError):
        resolve("nope")


def test_nerdgraph_export_is_read_by_the_events_pipeline(tmp_path):
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions

    events = tmp_path / "events"
    events.mkdir()
    message = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many clients already'
    for pid, ts in ((11, 1_700_000_000_000), (12, 1_700_000_001_000)):
        (events / f"errors-{pid}.jsonl").write_text(
            json.dumps(
                {
                    "type": "TransactionError",
                    "timestamp": ts,
                    "appName": "shop-web",
                    "host": "h",
                    "transactionName": "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view",
                    "error.class": "django.db.utils:OperationalError",
                    "error.message": message,
                }
            )
            + "\n"
        )
    paths = write_exports(events, tmp_path / "nr")
    envelope = json.loads(paths["nerdgraph"].read_text())
    results = envelope["data"]["actor"]["account"]["nrql"]["results"]
    assert [r["timestamp"] for r in results] == [
        1_700_000_001_000,
        1_700_000_000_000,
    ]  # newest first
    incident = investigate([paths["nerdgraph"]], ReadOptions(), TimelineOptions())
    assert incident.total == 2 and incident.by_combination == {"too_many_clients": 2}


def test_unknown_scenario_is_one_line_and_exit_2():
    result = CliRunner().invoke(app, ["lab", "--scenario", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("pgslots: --scenario: unknown scenario 'nope'")


def test_list_scenarios():
    result = CliRunner().invoke(app, ["lab", "--list"])
    assert result.exit_code == 0 and all(name in result.output for name in SCENARIOS)


def test_missing_lab_extra_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        lab_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celery" else real(name, *a),
    )
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 2
    assert "pip install 'pgslots[lab]'" in result.output and "Traceback" not in result.output


def test_help_has_examples():
    for command in ("lab", "demo"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert (
            result.exit_code == 0
            and "Examples" in result.output
            and f"pgslots {command}" in result.output
        )


def test_skipped_scenario_is_one_line(monkeypatch):
    from pgslots.lab import render, run
    from pgslots.lab.results import Skipped

    monkeypatch.setattr(run, "find_pgbouncer", lambda: None)
    reason = run.missing_parts(SCENARIOS["pgbouncer"])
    assert reason and "\n" not in reason and "pgbouncer" in reason
    text = render.render_text([Skipped("pgbouncer", reason)])
    assert f"pgbouncer  skipped: {reason}" in text
    assert run.missing_parts(dataclasses.replace(SCENARIOS["baseline"])) is None


def test_tasks_fan_out_in_periodic_batches_at_each_stage_rate():
    plan = LoadPlan(stages=(Stage(10, 5, 1), Stage(10, 20, 4)), task_batch=4)
    tasks = arrivals(plan, "task")
    assert all(tasks.count(t) == 4 for t in tasks)  # one batch, one instant
    first = sum(1 for t in tasks if t < 10)
    assert (first, len(tasks) - first) == (8, 40)  # 1/s and 4/s on average
    assert all(0 <= t < plan.load_seconds for t in tasks)
