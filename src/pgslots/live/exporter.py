"""`watch --prometheus HOST:PORT`: the latest snapshot as Prometheus gauges.

The exporter never queries the server itself: a scrape reads the snapshot the watch loop
took last, so scraping costs the server nothing and cannot open a second connection.

Unlike the usual `numbackends / max_connections` metrics, these count client backends only
and publish the reserved settings and the slots usable by the application role, so an alert
can subtract `reserved_connections` (see `examples/prometheus-alerts.yml`).
`pgslots_reserved_connections` is 0 before PostgreSQL 16 (nothing is reserved), so the same
expression works on every version.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pgslots.errors import InputError
from pgslots.live.model import HIDDEN, Snapshot

PREFIX = "pgslots_"


def _label(value: str | None) -> str:
    return HIDDEN if value is None else value


class SnapshotCollector(Collector):
    """Yields gauges from whatever snapshot `update` last received."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            return
        yield _gauge(
            "up",
            "1 when the last snapshot read the server, 0 when it was refused or unreachable",
            1 if snapshot.ok else 0,
        )
        refused = GaugeMetricFamily(
            PREFIX + "refused",
            "1 when the server refused the probe's connection (full for its role), by category",
            labels=["category"],
        )
        refused.add_metric(
            [snapshot.refused.category if snapshot.refused else ""], 1 if snapshot.refused else 0
        )
        yield refused
        yield _gauge(
            "snapshot_timestamp_seconds",
            "When the last snapshot was taken (Unix time)",
            snapshot.taken_at.timestamp(),
        )
        if snapshot.ok:
            yield from _server_metrics(snapshot)
        if snapshot.pgbouncer is not None:
            yield from _pgbouncer_metrics(snapshot)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _server_metrics(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    yield _gauge("max_connections", "Setting max_connections", snapshot.max_connections or 0)
    yield _gauge(
        "superuser_reserved_connections",
        "Setting superuser_reserved_connections",
        snapshot.superuser_reserved_connections or 0,
    )
    yield _gauge(
        "reserved_connections",
        "Setting reserved_connections (PG16+; 0 before 16)",
        snapshot.reserved_connections or 0,
    )
    role = snapshot.role.name if snapshot.role else ""
    for name, value, text in (
        (
            "usable_connections",
            snapshot.usable_for_role,
            "Slots the application role may fill: max_connections minus the slots reserved against it",
        ),
        (
            "headroom_connections",
            snapshot.headroom_for_role,
            "Connections the application role can still open now (server, role and database limits)",
        ),
    ):
        family = GaugeMetricFamily(PREFIX + name, text, labels=["role"])
        family.add_metric([role], value or 0)
        yield family
    yield _gauge(
        "client_backends_total",
        "Client backends (backend_type = 'client backend'), this probe included",
        snapshot.client_backends or 0,
    )
    by_labels: dict[tuple[str, str, str, str], int] = defaultdict(int)
    oldest_idle_tx: dict[tuple[str, str, str], float] = {}
    for backend in snapshot.backends:
        key = (
            _label(backend.database),
            _label(backend.user),
            _label(backend.application),
            _label(backend.state),
        )
        by_labels[key] += backend.count
        if backend.max_idle_in_transaction_seconds is not None:
            short = key[:3]
            oldest_idle_tx[short] = max(
                oldest_idle_tx.get(short, 0.0), backend.max_idle_in_transaction_seconds
            )
    family = GaugeMetricFamily(
        PREFIX + "client_backends",
        "Client backends by database, user, application and state",
        labels=["database", "user", "application", "state"],
    )
    for key, count in sorted(by_labels.items()):
        family.add_metric(list(key), count)
    yield family
    family = GaugeMetricFamily(
        PREFIX + "idle_in_transaction_max_seconds",
        "Longest time a session has been idle in transaction",
        labels=["database", "user", "application"],
    )
    for session, seconds in sorted(oldest_idle_tx.items()):
        family.add_metric(list(session), seconds)
    yield family
    yield from _limit_metrics(snapshot)
    if snapshot.query_ms is not None:
        yield _gauge(
            "snapshot_duration_seconds",
            "Time the snapshot's queries took",
            snapshot.query_ms / 1000,
        )


def _limit_metrics(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    """Connections held and CONNECTION LIMITs, per role and per database."""
    for kind, items in (("role", snapshot.roles), ("database", snapshot.database_limits)):
        held = GaugeMetricFamily(
            f"{PREFIX}{kind}_connections", f"Client backends per {kind}", labels=[kind]
        )
        limit = GaugeMetricFamily(
            f"{PREFIX}{kind}_connection_limit",
            f"CONNECTION LIMIT of each {kind} that has one",
            labels=[kind],
        )
        for item in items:
            held.add_metric([item.name], item.connections or 0)
            if item.connection_limit is not None:
                limit.add_metric([item.name], item.connection_limit)
        yield held
        yield limit


_POOL_GAUGES = (
    (
        "clients_active",
        "cl_active",
        "Clients linked to a server connection or idle (SHOW POOLS cl_active)",
    ),
    (
        "clients_waiting",
        "cl_waiting",
        "Clients waiting for a server connection (SHOW POOLS cl_waiting)",
    ),
    ("servers_active", "sv_active", "Server connections linked to a client"),
    ("servers_idle", "sv_idle", "Server connections idle and ready"),
    ("servers_used", "sv_used", "Server connections idle longer than server_check_delay"),
    (
        "maxwait_seconds",
        "maxwait_seconds",
        "How long the oldest waiting client has waited (maxwait + maxwait_us)",
    ),
    ("pool_size", "pool_size", "Pool size in force for the (database, user) pair"),
    (
        "server_limit",
        "server_limit",
        "pool_size + reserve_pool_size: server connections the pair may open",
    ),
)


def _pgbouncer_metrics(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    state = snapshot.pgbouncer
    assert state is not None
    for name, attribute, text in _POOL_GAUGES:
        family = GaugeMetricFamily(PREFIX + "pgbouncer_" + name, text, labels=["database", "user"])
        for pool in state.pools:
            value: Any = getattr(pool, attribute)
            if value is not None:
                family.add_metric([pool.database, pool.user], value)
        yield family
    if state.server_side_capacity is not None:
        yield _gauge(
            "pgbouncer_server_side_capacity",
            "Sum of pool sizes over (database, user) pairs, after max_db/user_connections caps",
            state.server_side_capacity,
        )


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces) -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise InputError(
            f"--prometheus {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9187 or :9187"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


class Exporter:
    """The HTTP endpoint, on its own registry (only pgslots' gauges, no process metrics)."""

    def __init__(self, address: str) -> None:
        self.host, port = parse_address(address)
        self.collector = SnapshotCollector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            self._server, self._thread = start_http_server(port, addr=self.host, registry=registry)
        except OSError as exc:
            raise InputError(
                f"--prometheus {address}: cannot listen: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.server_port)

    def update(self, snapshot: Snapshot) -> None:
        self.collector.update(snapshot)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
