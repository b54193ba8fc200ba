"""Real clients against a real, saturated PostgreSQL with SSL on: the messages psycopg
raises, exported as JSON Lines of events, come out of `pgslots events` in the same
families the clients saw, including the "combination of both" that libpq's
`sslmode=prefer` retry produces (a refusal before the SSL handshake, "too many clients",
is retried without SSL, and the second refusal is appended to the first)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from conftest import require_tool
from pgslots.events.pipeline import investigate
from pgslots.events.sources import ReadOptions
from pgslots.events.timeline import TimelineOptions
from pgslots.lab.postgres import PostgresUnavailable, _ensure_system_user, _running_as_root

pytestmark = pytest.mark.postgres


def _certificate(directory: Path) -> dict[str, str]:
    openssl = require_tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "server.key", directory / "server.crt"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    for path in (key, cert):
        path.chmod(0o600)
        if _running_as_root():
            os.chown(path, *_ensure_system_user())
    directory.chmod(0o755)
    return {"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key)}


def _storm(dsn: str, threads: int = 24, attempts: int = 15) -> Counter[str]:
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(attempts):
            try:
                psycopg.connect(dsn, connect_timeout=10).close()
            except psycopg.OperationalError as exc:
                with lock:
                    seen[str(exc)] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return seen


def _family(message: str) -> str:
    """The family, told by plain substring tests independent of the taxonomy's patterns."""
    kinds = []
    if "too many clients" in message:
        kinds.append("too_many_clients")
    if (
        "non-replication superuser connections" in message
        or "with the SUPERUSER attribute" in message
    ):
        kinds.append("reserved_superuser")
    return "+".join(kinds)


@pytest.fixture
def tls_dir():
    directory = Path(
        tempfile.mkdtemp(prefix="pgslots-tls-")
    )  # readable by the server's system user
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_real_refusals_keep_their_families(
    pg_binaries, start_postgres, tls_dir: Path, tmp_path: Path
) -> None:
    settings = {"max_connections": 6, "superuser_reserved_connections": 2}
    try:
        server = start_postgres(pg_binaries, settings={**settings, **_certificate(tls_dir)})
        with_ssl = True
    except PostgresUnavailable as exc:
        if "SSL is not supported" not in str(exc):
            raise
        server = start_postgres(
            pg_binaries, settings=settings
        )  # a build without SSL: no retry to see
        with_ssl = False
    server.create_role("app")
    held = [psycopg.connect(server.dsn("app")) for _ in range(4)]  # every slot the app role may use
    seen: Counter[str] = Counter()
    for _round in range(4):
        seen += _storm(server.dsn("app"))
        if not with_ssl or any(
            "too many clients" in m and "remaining connection slots" in m for m in seen
        ):
            break
    for conn in held:
        conn.close()
    export = tmp_path / "errors.jsonl"
    now = int(time.time() * 1000)
    with export.open("w") as handle:
        for i, (message, n) in enumerate(seen.items()):
            for j in range(n):
                handle.write(
                    json.dumps(
                        {
                            "timestamp": now + i * 10 + j,
                            "error.class": "psycopg:OperationalError",
                            "error.message": message,
                        }
                    )
                    + "\n"
                )
    incident = investigate([export], ReadOptions(), TimelineOptions())
    expected: Counter[str] = Counter()
    for message, n in seen.items():
        expected[_family(message)] += n
    assert dict(incident.by_combination) == dict(expected)
    assert expected["reserved_superuser"] >= 1, seen
    if with_ssl:
        assert expected["too_many_clients+reserved_superuser"] >= 1, seen
    two_attempts = sum(n for m, n in seen.items() if m.count("FATAL:") == 2)
    assert {n.key: n.count for n in incident.notes}.get("multi_attempt", 0) == two_attempts
    pre16 = {n.key for n in incident.notes}
    assert ("reserved_wording_pre16" in pre16) == (pg_binaries.major <= 15)
