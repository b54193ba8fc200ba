"""Bad input never gives a traceback: readers fed anything yield events, count skipped
records or raise `InputError`; the CLI turns errors into one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgslots.errors import InputError
from pgslots.events.pipeline import resolve_sources
from pgslots.events.sources import ReadOptions, ReadStats, all_sources

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OURS = ("newrelic", "newrelic-csv", "sentry", "applog", "pgbouncer")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pgslots(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args], capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stdout[-500:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and needle in result.stderr, result.stderr


def read_all(data: bytes, fmt: str | None) -> None:
    """Every reader (or detection) on `data`: events, skips or InputError, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        try:
            pairs = resolve_sources([path], fmt)
        except InputError:
            return
        for path_, source in pairs:
            stats = ReadStats(path=str(path_), format=source.name)
            try:
                for event in source.read(path_, ReadOptions(), stats):
                    assert event.ts.tzinfo is not None and event.count >= 0
            except InputError:
                pass
            assert 0 <= stats.skipped <= max(stats.records, 1)


fragments = st.sampled_from(
    [
        "Traceback (most recent call last):\n",
        '  File "/app/x.py", line 1, in f\n',
        "django.db.utils.OperationalError: connection failed: FATAL:  sorry, too many clients already\n",
        "[2026-05-11 22:22:05 +0000] [7] [ERROR] Internal Server Error: /a/\n",
        "[2026-05-11 22:22:05,123: ERROR/ForkPoolWorker-1] Task t[1] raised unexpected: x\n",
        "2026-11-25 15:55:09.821 UTC [3897] WARNING C-0x5640: appdb/app@127.0.0.1:33786 pooler error: query_wait_timeout\n",
        "2026-13-45 99:99:99.999 UTC [1] LOG C-0x1: a/b@c:1 closing because: x\n",
        '{"timestamp": 1778538125000, "error.message": "sorry, too many clients already"}\n',
        '{"event_id": "x", "timestamp": "nope", "exception": {"values": [1, {"type": null}]}}\n',
        '{"data":{"actor":{"account":{"nrql":{"results":[{"facet":["a",null],"count":"x"}],"metadata":{"facets":["host"]}}}}}}\n',
        "timestamp,error.message\n",
        "99999999999999999999,x\n",
        "\x00",
        "\ufeff",
        "\n",
        "{",
        "[",
        "]",
        "}",
        ",",
    ]
)


@given(st.lists(fragments, max_size=30), st.sampled_from((None, *OURS)))
@FUZZ
def test_readers_survive_shuffled_real_fragments(parts, fmt) -> None:
    read_all("".join(parts).encode("utf-8", "surrogatepass"), fmt)


@given(st.binary(max_size=2000), st.sampled_from((None, *OURS)))
@FUZZ
def test_readers_survive_arbitrary_bytes(data, fmt) -> None:
    read_all(data, fmt)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "results",
                    "facet",
                    "count",
                    "timestamp",
                    "error.message",
                    "beginTimeSeconds",
                    "endTimeSeconds",
                    "metadata",
                    "facets",
                    "exception",
                    "values",
                    "entries",
                    "tags",
                    "event_id",
                    "data",
                    "actor",
                    "account",
                    "nrql",
                    "otherResult",
                    "timeWindow",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(json_values, st.sampled_from(("newrelic", "sentry")))
@FUZZ
def test_json_readers_survive_arbitrary_json(value, fmt) -> None:
    read_all(json.dumps(value).encode(), fmt)


def test_every_reader_is_registered() -> None:
    assert set(OURS) <= {s.name for s in all_sources()}


# -- through the CLI ----------------------------------------------------------------------------


def test_unknown_input_format_names_the_supported_ones() -> None:
    result = pgslots(
        "events", str(FIXTURES / "pgbouncer" / "pgbouncer.log"), "--input-format", "splunk"
    )
    assert_one_line_error(result, "unknown input format 'splunk'; supported: ")
    for name in OURS:
        assert name in result.stderr


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(
        (FIXTURES.parent.parent / "examples" / "newrelic-incident.json").read_text()[:20000]
    )
    assert_one_line_error(pgslots("events", str(path)), "truncated JSON")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "core.dump"
    path.write_bytes(bytes(range(256)) * 64)
    assert_one_line_error(pgslots("events", str(path)), "binary file")
    assert_one_line_error(pgslots("events", str(path), "-i", "pgbouncer"), "binary file")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert_one_line_error(pgslots("events", str(tmp_path / "nope.json")), "no such file")
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert_one_line_error(pgslots("events", str(empty)), "file is empty")


def test_a_log_with_five_percent_garbage_lines_is_read_and_the_skips_reported(
    tmp_path: Path,
) -> None:
    good = (FIXTURES / "pgbouncer" / "pgbouncer.log").read_text().splitlines()
    lines: list[str] = []
    for _ in range(20):
        lines += good
    garbage = len(lines) // 19  # 5 % of the result
    for i in range(garbage):
        lines.insert(i * 19 + 7, f"@@ garbage {i} \x7f not a log line")
    path = tmp_path / "pgbouncer.log"
    path.write_text("\n".join(lines) + "\n")
    text = pgslots("events", str(path))
    assert text.returncode == 0, text.stderr
    assert f"{garbage} lines skipped" in " ".join(text.stdout.split())  # wherever the line folds
    report = json.loads(pgslots("events", str(path), "--format", "json").stdout)
    assert report["skipped"] == garbage and report["total"] == 5 * 20
    assert report["inputs"][0]["skipped_examples"][0]["line"] == 8


def test_a_two_megabyte_single_line(tmp_path: Path) -> None:
    noise = tmp_path / "noise.txt"
    noise.write_text("x" * (2 * 1024 * 1024))
    assert_one_line_error(pgslots("events", str(noise)), "format not recognised")
    forced = pgslots("events", str(noise), "--input-format", "pgbouncer")
    assert_one_line_error(forced, "none of its 1 records could be read as pgbouncer")
    huge = tmp_path / "huge.jsonl"
    event = {
        "timestamp": 1778538125000,
        "error.message": "sorry, too many clients already " + "y" * 2_000_000,
    }
    huge.write_text(json.dumps(event) + "\n" + json.dumps(event) + "\n")
    report = json.loads(pgslots("events", str(huge), "--format", "json").stdout)
    assert report["total"] == 2 and report["by_combination"] == {"too_many_clients": 2}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--bucket", "5 parsecs"], "--bucket"),
        (["--facet", "colour"], "--facet 'colour' is not a facet"),
        (["--tz", "Mars/Olympus"], "--tz 'Mars/Olympus'"),
        (["--since", "2026-05-12", "--until", "2026-05-11"], "--until must be later"),
        (["--format", "sarif"], "is not one of"),
        (["--align", "sometime"], "--align"),
    ],
)
def test_bad_options_are_one_line(args, needle) -> None:
    assert_one_line_error(
        pgslots("events", str(FIXTURES / "newrelic" / "incident-ui-export.csv"), *args), needle
    )
