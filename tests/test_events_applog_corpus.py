"""Application logs as people collect them: one fixture per shape, each made by real
processes (tests/fixtures/make_applog_corpus.py: Django under gunicorn, uvicorn, gunicorn +
UvicornWorker and a Celery worker, failing against a full PostgreSQL 15, then passed
through docker compose / docker -t / kubectl / Heroku / Cloud Logging line formats or a
real journald). Every file holds the same failures: 3 requests to /checkout/ and 3
`shop.tasks.sync_orders` refused ("remaining connection slots are reserved"), 1 request to
/reports/ and 1 `shop.tasks.refresh_reports` timing out on a psycopg_pool pool."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
from pathlib import Path

import pytest

from pgslots.events.pipeline import investigate, resolve_sources
from pgslots.events.sources import ReadOptions
from pgslots.events.timeline import TimelineOptions
from pgslots.events.times import parse_zone

CORPUS = Path(__file__).resolve().parent / "fixtures" / "applog" / "corpus"
WEB = {"/checkout/": 3, "/reports/": 1}
TASKS = {"celery:shop.tasks.sync_orders": 3, "celery:shop.tasks.refresh_reports": 1}
BOTH = {"reserved_superuser": 6, "pool_timeout": 2}
WEB_ONLY = {"reserved_superuser": 3, "pool_timeout": 1}


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


# file -> (combinations, first event UTC, last event UTC, transactions, events whose time had no zone)
EXPECTED = {
    # gunicorn + Django's "verbose" (level first, no zone) and Celery's format, `docker compose logs`
    "compose-django-verbose.log": (
        BOTH,
        "2026-12-06 15:26:41.949",
        "2026-12-06 15:26:43",
        WEB | TASKS,
        8,
    ),
    # uvicorn's default format has no time: docker's (RFC 3339, ns) is used
    "docker-t-uvicorn.log": (
        WEB_ONLY,
        "2026-12-06 15:26:49.475049",
        "2026-12-06 15:26:50.018739",
        WEB,
        0,
    ),
    # gunicorn + UvicornWorker, python-json-logger (asctime without zone), kubectl --timestamps
    "kubectl-timestamps-json-logger.log": (
        WEB_ONLY,
        "2026-12-06 15:26:51.908",
        "2026-12-06 15:26:52.459",
        WEB,
        4,
    ),
    # gunicorn's format ([... +0000]) and Celery's, kubectl --prefix over two pods
    "kubectl-prefix-gunicorn.log": (
        BOTH,
        "2026-12-06 15:26:54",
        "2026-12-06 15:26:56",
        WEB | TASKS,
        4,
    ),
    # ISO 8601 with T, dot and Z, level after the time, `heroku logs` (with router lines)
    "heroku.log": (BOTH, "2026-12-06 15:27:02.195", "2026-12-06 15:27:04.071", WEB | TASKS, 0),
    # structlog's JSONRenderer (event, exception, timestamp), uvicorn + Celery, raw JSON lines
    "structlog.log": (
        BOTH,
        "2026-12-06 15:27:09.745389",
        "2026-12-06 15:27:11.592460",
        WEB | TASKS,
        0,
    ),
    # ecs-logging's StdlibFormatter (@timestamp, error.stack_trace), gunicorn
    "ecs.log": (WEB_ONLY, "2026-12-06 15:27:16.541", "2026-12-06 15:27:17.072", WEB, 0),
    # a Cloud Logging sink: jsonPayload (python-json-logger) and textPayload (Celery's lines)
    # the same entries as `gcloud logging read --format=json` prints them (an array, newest first)
    "gcloud-logging-read.json": (
        BOTH,
        "2026-12-06 15:27:19.257",
        "2026-12-06 15:27:21",
        WEB | TASKS,
        8,
    ),
    # docker's json-file driver's own file: gunicorn + UvicornWorker, gunicorn's format
    "docker-json-file.log": (WEB_ONLY, "2026-12-06 15:27:26", "2026-12-06 15:27:26", WEB, 0),
    "cloud-logging.json": (BOTH, "2026-12-06 15:27:19.257", "2026-12-06 15:27:21", WEB | TASKS, 8),
    # a real journald fed by systemd-cat: Celery (own times, no zone) and uvicorn (none: journald's)
    "journald-short-iso.log": (BOTH, "2026-12-06 15:27:29", "2026-12-06 15:27:30", WEB | TASKS, 4),
    "journald-short.log": (BOTH, "2026-12-06 15:27:29", "2026-12-06 15:27:30", WEB | TASKS, 4),
    "journald.json": (BOTH, "2026-12-06 15:27:29.058076", "2026-12-06 15:27:30", WEB | TASKS, 4),
}
UNTIMED = {"docker-t-uvicorn.log", "journald-short-iso.log", "journald-short.log", "journald.json"}


def corpus_file(name: str, tmp_path: Path) -> Path:
    """The fixture; a syslog-time one copied with the modification time it had when made
    (its year is read from it)."""
    path = CORPUS / name
    if name != "journald-short.log":
        return path
    copy = tmp_path / name
    shutil.copy(path, copy)
    made = dt.datetime(2026, 12, 6, 15, 28, tzinfo=dt.timezone.utc).timestamp()
    os.utime(copy, (made, made))
    return copy


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_collected_shape_gives_the_exact_events(name: str, tmp_path: Path) -> None:
    combinations, first, last, transactions, naive = EXPECTED[name]
    path = corpus_file(name, tmp_path)
    assert resolve_sources([path])[0][1].name == "applog"  # by content
    result = investigate([path], ReadOptions(), TimelineOptions())
    assert result.by_combination == combinations
    assert (result.first_event, result.last_event) == (t(first), t(last))
    assert {row.value: row.count for row in result.facets["transaction"]} == transactions
    assert result.inputs[0].skipped == 0
    if naive:
        assert result.timezone_note and result.timezone_note.startswith(
            f"{naive} event times had no time zone"
        )
    else:
        assert result.timezone_note is None
    collector_timed = [
        n
        for n in result.inputs[0].notes
        if "the collector's time of their first line was used" in n
    ]
    assert bool(collector_timed) == (name in UNTIMED)
    forced = investigate([path], ReadOptions(), TimelineOptions(), input_format="applog")
    assert forced.by_combination == combinations


def test_interleaved_streams_keep_their_records_apart() -> None:
    """In the compose file a web traceback is cut by the worker's lines: the records are
    put together per service, so both still count (the fixture must show the cut)."""
    services = [
        line.split(" ", 1)[0]
        for line in (CORPUS / "compose-django-verbose.log").read_text().splitlines()
    ]
    switches = sum(1 for a, b in itertools.pairwise(services) if a != b)
    assert switches >= 3
    result = investigate([CORPUS / "compose-django-verbose.log"], ReadOptions(), TimelineOptions())
    assert result.total == 8


def test_naive_times_are_read_in_tz_and_shown_in_utc() -> None:
    paris = ReadOptions(tz=parse_zone("Europe/Paris"))
    result = investigate([CORPUS / "compose-django-verbose.log"], paris, TimelineOptions())
    assert result.first_event == t("2026-12-06 14:26:41.949")  # 15:26 in Paris is 14:26 UTC
    assert "Europe/Paris" in (result.timezone_note or "")
    zoned = investigate([CORPUS / "heroku.log"], paris, TimelineOptions())
    assert zoned.first_event == t(
        "2026-12-06 15:27:02.195"
    )  # a zone was written: --tz does not apply


def test_syslog_times_take_the_file_year_and_the_year_before_for_later_months(
    tmp_path: Path,
) -> None:
    path = corpus_file("journald-short.log", tmp_path)
    january = dt.datetime(2027, 1, 3, tzinfo=dt.timezone.utc).timestamp()
    os.utime(path, (january, january))  # December's lines in a file last written in January
    result = investigate([path], ReadOptions(), TimelineOptions())
    assert result.first_event == t("2026-12-06 15:27:29")
    assert any("read as 2027" in note for note in result.inputs[0].notes)


def test_structlog_dict_tracebacks(tmp_path: Path) -> None:
    """structlog's `dict_tracebacks` writes the exception chain as a list of dicts."""
    import psycopg
    import structlog

    render = structlog.processors.JSONRenderer()
    lines = []
    for attempt in range(2):
        try:
            try:
                psycopg.connect("host=127.0.0.1 port=1 connect_timeout=1")
            except psycopg.OperationalError as exc:
                raise psycopg.OperationalError(
                    "connection failed: FATAL:  sorry, too many clients already"
                ) from exc
        except psycopg.OperationalError:
            event = {
                "event": "Internal Server Error: /checkout/",
                "level": "error",
                "timestamp": f"2026-11-25T15:12:2{attempt}.5Z",
                "exc_info": True,
            }
            event = structlog.processors.dict_tracebacks(None, "error", event)
            lines.append(render(None, "error", event))
    path = tmp_path / "dict.log"
    path.write_text("\n".join(lines) + "\n")
    assert isinstance(json.loads(lines[0])["exception"], list)
    result = investigate([path], ReadOptions(), TimelineOptions())
    assert result.by_combination == {"too_many_clients": 2}
    assert result.first_event == t("2026-11-25 15:12:20.5")
    assert {row.value for row in result.facets["transaction"]} == {"/checkout/"}
