"""Each reader on its own: New Relic (NerdGraph, Insights, JSON Lines, CSV), Sentry,
application logs and pgbouncer logs, on fixtures produced by real runs where possible."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from pgslots.errors import InputError
from pgslots.events.model import Category
from pgslots.events.pipeline import investigate, resolve_sources
from pgslots.events.sources import ReadOptions, ReadStats, source_named
from pgslots.events.timeline import TimelineOptions
from pgslots.events.times import parse_zone

FIXTURES = Path(__file__).resolve().parent / "fixtures"
UTC = dt.timezone.utc
RESERVED = "connection failed: FATAL:  remaining connection slots are reserved for non-replication superuser connections"
TOO_MANY = "connection failed: FATAL:  sorry, too many clients already"


def read(path: Path, fmt: str | None = None, **options):
    source = source_named(fmt) if fmt else resolve_sources([path])[0][1]
    stats = ReadStats(path=str(path), format=source.name)
    return source.name, list(source.read(path, ReadOptions(**options), stats)), stats


def incident(*paths: Path, **timeline):
    return investigate(list(paths), ReadOptions(), TimelineOptions(**timeline))


def write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# -- New Relic ----------------------------------------------------------------------------------


def test_insights_envelope_raw_events_and_facets(tmp_path: Path) -> None:
    raw = write(
        tmp_path,
        "insights.json",
        {
            "results": [
                {
                    "events": [
                        {
                            "timestamp": 1778538125000,
                            "error.message": RESERVED,
                            "transactionName": "WebTransaction/Function/a:b",
                        },
                        {
                            "timestamp": 1778538185000,
                            "error.message": TOO_MANY,
                            "transactionName": "WebTransaction/Function/a:b",
                        },
                    ]
                }
            ],
            "performanceStats": {"inspectedCount": 2},
            "metadata": {
                "eventTypes": ["TransactionError"],
                "beginTimeMillis": 1778538000000,
                "endTimeMillis": 1778539800000,
            },
        },
    )
    name, events, _ = read(raw)
    assert name == "newrelic" and [e.message for e in events] == [RESERVED, TOO_MANY]
    facets = write(
        tmp_path,
        "facets.json",
        {
            "facets": [
                {"name": "WebTransaction/Function/a:b", "results": [{"count": 7}]},
                {"name": "OtherTransaction/Celery/t", "results": [{"count": 2}]},
            ],
            "metadata": {
                "facet": "transactionName",
                "beginTimeMillis": 1778538000000,
                "endTimeMillis": 1778539800000,
            },
        },
    )
    _, events, _ = read(facets)
    assert [(e.transaction, e.count) for e in events] == [
        ("WebTransaction/Function/a:b", 7),
        ("OtherTransaction/Celery/t", 2),
    ]
    assert events[0].ts == dt.datetime(2026, 5, 11, 22, 20, tzinfo=UTC)
    series = write(
        tmp_path,
        "series.json",
        {
            "timeSeries": [
                {
                    "results": [{"count": 3}],
                    "beginTimeSeconds": 1778538000,
                    "endTimeSeconds": 1778538060,
                },
                {
                    "results": [{"count": 0}],
                    "beginTimeSeconds": 1778538060,
                    "endTimeSeconds": 1778538120,
                },
            ],
            "metadata": {"beginTimeMillis": 1778538000000, "endTimeMillis": 1778538120000},
        },
    )
    _, events, stats = read(series)
    assert [e.count for e in events] == [3] and stats.records == 2


def test_nerdgraph_facet_with_other_result_adds_up(tmp_path: Path) -> None:
    doc = {
        "data": {
            "actor": {
                "account": {
                    "nrql": {
                        "results": [
                            {"facet": RESERVED, "error.message": RESERVED, "count": 40},
                            {"facet": TOO_MANY, "error.message": TOO_MANY, "count": 5},
                        ],
                        "otherResult": {"count": 3},
                        "totalResult": {"count": 48},
                        "metadata": {
                            "facets": ["error.message"],
                            "timeWindow": {"begin": 1778538000000, "end": 1778539800000},
                        },
                    }
                }
            }
        }
    }
    result = incident(write(tmp_path, "facet.json", doc))
    assert result.total == 48
    assert result.by_combination == {"reserved_superuser": 40, "too_many_clients": 5, "other": 3}


def test_nerdgraph_error_response_is_one_clear_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "err.json",
        {
            "data": {"actor": {"account": {"nrql": None}}},
            "errors": [{"message": "NRQL Syntax Error: Error at line 1"}],
        },
    )
    with pytest.raises(InputError, match="NRQL Syntax Error"):
        read(path, "newrelic")


def test_json_lines_plain_array_and_single_object(tmp_path: Path) -> None:
    lines = [
        json.dumps({"timestamp": 1778538125000 + i, "error.message": RESERVED, "host": f"web-{i}"})
        for i in range(3)
    ]
    path = write(
        tmp_path, "events.jsonl", "\n".join([lines[0], "{not json", lines[1], "", lines[2]]) + "\n"
    )
    name, events, stats = read(path)
    assert name == "newrelic" and len(events) == 3 and stats.skipped == 1
    assert stats.skipped_examples[0].line == 2
    array = write(tmp_path, "array.json", [json.loads(line) for line in lines])
    assert len(read(array)[1]) == 3
    single = write(
        tmp_path,
        "one.json",
        {
            "timestamp": 1778538125000,
            "error.message": TOO_MANY,
            "error.class": "psycopg:OperationalError",
        },
    )
    assert read(single, "newrelic")[1][0].error_class == "psycopg:OperationalError"


def test_csv_with_human_times_and_the_255_character_cut(tmp_path: Path) -> None:
    long_message = (
        TOO_MANY + "\n" + 'connection to server at "db" (10.0.3.14), port 5432 failed: ' + RESERVED
    ) * 2
    cut = long_message[:255]
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Error message", "Transaction name", "Host"])
        writer.writerow(["May 11, 2026 22:22:05", TOO_MANY, "WebTransaction/Function/a:b", "web-1"])
        writer.writerow(["May 11, 2026 22:23:05", cut, "WebTransaction/Function/a:b", "web-2"])
    result = investigate([path], ReadOptions(tz=parse_zone("Europe/Paris")), TimelineOptions())
    assert result.first_event == dt.datetime(
        2026, 5, 11, 20, 22, 5, tzinfo=UTC
    )  # read in --tz, shown in UTC
    assert result.timezone_note and "Europe/Paris" in result.timezone_note
    assert any("255 characters" in note for note in result.inputs[0].notes)
    assert result.by_combination == {
        "too_many_clients": 1,
        "too_many_clients+reserved_superuser": 1,
    }


def test_gzip_and_several_files_at_once(tmp_path: Path) -> None:
    source = FIXTURES / "newrelic" / "incident-ui-export.csv"
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    result = incident(packed, FIXTURES / "pgbouncer" / "pgbouncer.log")
    assert [i.format for i in result.inputs] == ["newrelic-csv", "pgbouncer"]
    assert result.total == 440 + 5


# -- Sentry -------------------------------------------------------------------------------------


def test_sentry_sdk_events_from_a_real_failure() -> None:
    name, events, stats = read(FIXTURES / "sentry" / "events-sdk.json")
    assert name == "sentry" and len(events) == 2 and stats.skipped == 0
    web, task = events
    assert web.error_class == "django.db.utils:OperationalError"  # the outermost, last in the chain
    assert "remaining connection slots are reserved" in web.message
    assert (web.transaction, web.host, web.app) == ("/checkout/", "web-07", "production")
    assert task.transaction == "celery:shop.tasks.sync_orders"


def test_sentry_api_stored_format_with_entries_and_tag_forms(tmp_path: Path) -> None:
    stored = {
        "eventID": "9999aaaaca8b46d797c23c6077c6ff01",
        "dateCreated": "2026-05-11T22:27:01.5Z",
        "project": "ami",
        "title": "OperationalError: connection failed",
        "culprit": "ami.main.api.views in list",
        "entries": [
            {
                "type": "exception",
                "data": {
                    "values": [
                        {"module": "psycopg", "type": "OperationalError", "value": TOO_MANY},
                        {
                            "module": "django.db.utils",
                            "type": "OperationalError",
                            "value": TOO_MANY,
                        },
                    ]
                },
            }
        ],
        "tags": [
            {"key": "environment", "value": "production"},
            {"key": "server_name", "value": "web-3"},
            {"key": "transaction", "value": "/api/v2/captures/"},
        ],
    }
    sdk_pairs = {
        "event_id": "ab",
        "timestamp": 1778538421.25,
        "exception": {
            "values": [
                {
                    "module": "psycopg_pool",
                    "type": "PoolTimeout",
                    "value": "couldn't get a connection after 30.00 sec",
                }
            ]
        },
        "tags": [["server_name", "worker-1"], ["celery_task_id", "x"]],
        "transaction": "ami.jobs.tasks.sync",
    }
    path = write(
        tmp_path, "events.json", [stored, sdk_pairs, {"event_id": "no-exception-no-message"}]
    )
    _, events, stats = read(path)
    assert stats.skipped == 1 and len(events) == 2
    assert (events[0].host, events[0].app, events[0].transaction) == (
        "web-3",
        "ami (production)",
        "/api/v2/captures/",
    )
    assert events[0].ts == dt.datetime(2026, 5, 11, 22, 27, 1, 500000, tzinfo=UTC)
    assert (events[1].transaction, events[1].host) == ("celery:ami.jobs.tasks.sync", "worker-1")
    assert events[1].error_class == "psycopg_pool:PoolTimeout"
    jsonl = write(
        tmp_path, "events.jsonl", "\n".join(json.dumps(e) for e in (stored, sdk_pairs)) + "\n"
    )
    assert len(read(jsonl)[1]) == 2


# -- application logs ---------------------------------------------------------------------------


def test_gunicorn_error_log_from_a_real_django_failure() -> None:
    name, events, _ = read(FIXTURES / "applog" / "gunicorn-error.log")
    assert name == "applog" and len(events) == 3
    assert {e.transaction for e in events} == {"/checkout/"}  # "Internal Server Error: /checkout/"
    assert {e.error_class for e in events} == {"django.db.utils:OperationalError"}
    assert all(e.ts.tzinfo is not None for e in events)
    assert "remaining connection slots are reserved" in events[0].message


def test_celery_and_uvicorn_logs_name_tasks_and_pool_timeouts() -> None:
    result = incident(
        FIXTURES / "applog" / "celery-worker.log", FIXTURES / "applog" / "uvicorn.log"
    )
    transactions = {row.value: row.count for row in result.facets["transaction"]}
    assert transactions == {
        "celery:shop.tasks.sync_orders": 2,
        "celery:shop.tasks.refresh_reports": 1,
        "shop/views.py:checkout": 2,
        "shop/views.py:reports": 1,
    }
    assert result.by_combination == {"reserved_superuser": 4, "pool_timeout": 2}
    assert {n.key for n in result.notes} >= {"worker_side", "pool_timeout"}


def test_psycopg2_and_multi_attempt_tracebacks_and_untimed_records(tmp_path: Path) -> None:
    text = (
        "\n".join(
            [
                "2026-05-11 22:22:05,120 ERROR django.request Internal Server Error: /a/",
                "Traceback (most recent call last):",
                '  File "/app/shop/views.py", line 3, in a',
                "    cursor.execute('SELECT 1')",
                'psycopg2.OperationalError: connection to server at "10.0.0.5", port 5432 failed: FATAL:  sorry, too many clients already',
                "",
                "2026-05-11 22:22:06,000 ERROR celery.app.trace Task shop.tasks.t[0d6c1f9e-7f5a-4d8e-9b0a-1c2d3e4f5a6b] raised unexpected: OperationalError()",
                "Traceback (most recent call last):",
                '  File "/usr/lib/python3.11/site-packages/celery/app/trace.py", line 1, in trace_task',
                'psycopg.OperationalError: connection failed: connection to server at "::1", port 5432 failed: FATAL:  sorry, too many clients already',
                "Multiple connection attempts failed. All failures were:",
                "- host: 'db', port: '5432', hostaddr: '10.0.0.1': connection failed: connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
                "- host: 'db', port: '5432', hostaddr: '::1': connection failed: connection to server at \"::1\", port 5432 failed: FATAL:  sorry, too many clients already",
                "2026-05-11 22:22:07,000 ERROR app failed",
                "Traceback (most recent call last):",
                '  File "/app/shop/views.py", line 9, in b',
                "KeyError: 'x'",
                "ERROR:    Exception in ASGI application",
                "Traceback (most recent call last):",
                '  File "/app/shop/views.py", line 3, in a',
                "django.db.utils.OperationalError: connection failed: FATAL:  sorry, too many clients already",
            ]
        )
        + "\n"
    )
    path = write(tmp_path, "app.log", text)
    name, events, stats = read(path)
    assert name == "applog" and len(events) == 2
    assert events[0].error_class == "psycopg2:OperationalError" and events[0].transaction == "/a/"
    assert events[1].transaction == "celery:shop.tasks.t"
    assert "Multiple connection attempts failed" in events[1].message
    result = incident(path)
    assert result.by_combination == {
        "too_many_clients": 1,
        "too_many_clients+reserved_superuser": 1,
    }
    assert stats.skipped == 1 and "without a time" in stats.notes[0]
    assert any("1 tracebacks of other exceptions" in n for n in stats.notes)


# -- pgbouncer ----------------------------------------------------------------------------------


def test_pgbouncer_log_from_a_real_pgbouncer() -> None:
    name, events, stats = read(FIXTURES / "pgbouncer" / "pgbouncer.log")
    assert name == "pgbouncer" and stats.skipped == 0
    result = incident(FIXTURES / "pgbouncer" / "pgbouncer.log")
    assert result.by_combination == {
        "pgbouncer_query_wait_timeout": 2,
        "reserved_superuser": 2,
        "pgbouncer_max_client_conn": 1,
    }
    refused = next(e for e in events if "max_client_conn" in e.message)
    assert (refused.db, refused.user, refused.client) == (None, None, "127.0.0.1")
    assert {e.db for e in events if "query_wait" in e.message} == {"appdb"}
    assert any("logins to the server failed 2 times" in n for n in stats.notes)


def test_pgbouncer_without_pooler_error_lines_counts_closings_once(tmp_path: Path) -> None:
    lines = (FIXTURES / "pgbouncer" / "pgbouncer.log").read_text().splitlines()
    path = write(
        tmp_path, "quiet.log", "\n".join(ln for ln in lines if "pooler error" not in ln) + "\n"
    )
    result = incident(path)
    assert result.by_combination == {
        "pgbouncer_query_wait_timeout": 2,
        "reserved_superuser": 2,
        "pgbouncer_max_client_conn": 1,
    }


def test_categories_survive_the_pipeline() -> None:
    result = incident(FIXTURES / "pgbouncer" / "pgbouncer.log")
    assert set(result.samples) == {
        Category.PGBOUNCER_QUERY_WAIT_TIMEOUT.value,
        Category.RESERVED_SUPERUSER.value,
        Category.PGBOUNCER_MAX_CLIENT_CONN.value,
    }
