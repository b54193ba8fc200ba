"""Client backends over time, read from `pg_stat_activity` by a superuser session that
connects before the app starts and stays for the whole run.

Slots: the sampler is a real client backend, and every backend lowers the free count that
PostgreSQL's reserved-slot check looks at (domain reference §1.2). So that the deployment
under test keeps exactly the budget its scenario names, the lab sets `max_connections` one
higher than the scenario's figure: the sampler's slot is added on top, not taken from the
app. It connects as the superuser, like a monitoring agent would, and never counts itself.

With pgbouncer in front, it also reads pgbouncer's admin console (`SHOW POOLS`), which
costs the server no slot: that is where clients waiting for a server connection show.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

_QUERY = """
SELECT coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, ''),
       count(*), coalesce(max(extract(epoch FROM now() - state_change)), 0)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3
"""


class Sampler:
    """Polls every `interval` seconds in a thread; writes one JSON line per sample."""

    def __init__(
        self, dsn: str, out: Path, *, interval: float = 0.25, pgbouncer_dsn: str | None = None
    ) -> None:
        self.dsn = dsn
        self.pgbouncer_dsn = pgbouncer_dsn
        self.out = out
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._bouncer: psycopg.Connection[Any] | None = None
        self.t0 = time.time()

    def start(self) -> Sampler:
        self._conn = psycopg.connect(self.dsn, autocommit=True, application_name="pgslots-sampler")
        if self.pgbouncer_dsn:
            # pgbouncer's admin console speaks only the simple query protocol.
            self._bouncer = psycopg.connect(
                self.pgbouncer_dsn, autocommit=True, cursor_factory=psycopg.ClientCursor
            )
        self._thread = threading.Thread(target=self._loop, name="pgslots-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for conn in (self._conn, self._bouncer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def sample_now(self) -> dict[str, Any]:
        assert self._conn is not None
        rows = self._conn.execute(_QUERY).fetchall()
        now = time.time()
        sample: dict[str, Any] = {
            "ts": round(now, 3),
            "t": round(now - self.t0, 3),
            "client_backends": 0,
            "by_user": {},
            "by_app": {},
            "by_state": {},
            "idle_by_app": {},
            "oldest_idle_s": 0.0,
        }
        for user, app, state, count, oldest in rows:
            count = int(count)
            sample["client_backends"] += count
            for key, value in (
                ("by_user", user),
                ("by_app", app),
                ("by_state", state or "starting"),
            ):
                sample[key][value] = sample[key].get(value, 0) + count
            if state == "idle":
                sample["idle_by_app"][app] = sample["idle_by_app"].get(app, 0) + count
                sample["oldest_idle_s"] = max(sample["oldest_idle_s"], round(float(oldest), 1))
        if self._bouncer is not None:
            try:
                sample["pgbouncer"] = self._pgbouncer_pools()
            except psycopg.Error:
                self.errors += 1
        return sample

    def _pgbouncer_pools(self) -> dict[str, int]:
        assert self._bouncer is not None
        cur = self._bouncer.execute("SHOW POOLS")
        names = [d.name for d in cur.description or ()]
        totals = {"cl_active": 0, "cl_waiting": 0, "sv_active": 0, "sv_idle": 0, "sv_used": 0}
        for row in cur.fetchall():
            record = dict(zip(names, row, strict=True))
            if record.get("database") == "pgbouncer":
                continue
            for key in totals:
                totals[key] += int(record.get(key) or 0)
        return totals

    def _loop(self) -> None:
        with self.out.open("a", buffering=1, encoding="utf-8") as out:
            while not self._stop.is_set():
                try:
                    sample = self.sample_now()
                except Exception:  # noqa: BLE001 - a lost sample is counted, the run goes on
                    self.errors += 1
                else:
                    self.samples.append(sample)
                    out.write(json.dumps(sample) + "\n")
                self._stop.wait(self.interval)
