"""examples/prometheus-alerts.yml: every metric it uses is one pgslots exports, and (where
Prometheus is installed) a real Prometheus scraping a real `watch` fires the slot alerts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from conftest import require_tool
from live_support import held, make_roles, wait_for
from pgslots.lab.postgres import free_port
from pgslots.live.exporter import SnapshotCollector
from pgslots.live.model import (
    BackendGroup,
    PgbouncerPool,
    PgbouncerState,
    RoleInfo,
    Snapshot,
    utc_millis,
)

RULES = Path(__file__).resolve().parent.parent / "examples" / "prometheus-alerts.yml"


def exported_names() -> set[str]:
    app = RoleInfo("app", False, False, 10, 3)
    snapshot = Snapshot(
        taken_at=utc_millis(),
        target="t",
        max_connections=10,
        superuser_reserved_connections=3,
        reserved_connections=0,
        role=app,
        usable_for_role=7,
        client_backends=4,
        headroom_for_role=3,
        roles=(app,),
        backends=(
            BackendGroup("d", "app", "web", "10.0.0.1", "idle in transaction", 1, None, 90.0),
        ),
        pgbouncer=PgbouncerState(
            "PgBouncer 1.18.0",
            (PgbouncerPool("d", "app", 1, 0, 1, 0, 0, 0.0, None, 2),),
            server_side_capacity=2,
        ),
        query_ms=1.0,
    )
    collector = SnapshotCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    collector.update(snapshot)
    text = generate_latest(registry).decode()
    return set(re.findall(r"^(pgslots_\w+)", text, re.MULTILINE))


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_metric_in_the_rules_is_exported():
    names = exported_names()
    used = {name for rule in rules() for name in re.findall(r"\bpgslots_\w+", rule["expr"])}
    assert used and used <= names, used - names
    # The point of these rules: the reserved slots are subtracted, client backends only.
    ordinary = next(r for r in rules() if r["alert"] == "PostgresOrdinarySlotsLow")["expr"]
    assert (
        "- pgslots_reserved_connections" in ordinary and "pgslots_client_backends_total" in ordinary
    )


def test_promtool_accepts_the_rules():
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.postgres
def test_real_prometheus_fires_the_slot_alerts(embedded_pg, start_postgres, tmp_path):
    binary = require_tool("prometheus")
    server = start_postgres(
        embedded_pg, settings={"max_connections": 10, "superuser_reserved_connections": 3}
    )
    make_roles(server)
    exporter_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "pgslots",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=6)  # + the probe = 7 = all 7 usable by app
        watch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgslots",
                "watch",
                server.dsn("mon"),
                "--app-role",
                "app",
                "--interval",
                "0.5",
                "--prometheus",
                f"127.0.0.1:{exporter_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def alerts() -> dict[str, str] | None:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{prometheus_port}/api/v1/alerts", timeout=2
                    ) as r:
                        data = json.loads(r.read())
                except OSError:
                    return None
                found = {a["labels"]["alertname"]: a["state"] for a in data["data"]["alerts"]}
                wanted = {
                    "PostgresAppConnectionSlotsLow",
                    "PostgresAppConnectionSlotsExhausted",
                    "PostgresOrdinarySlotsLow",
                }
                return found if wanted <= set(found) else None

            found = wait_for(alerts, timeout=60, step=0.5)
        finally:
            prometheus.terminate()
            watch.terminate()
            prometheus.wait(30)
            watch.wait(30)
    assert "PostgresRefusedTheProbe" not in found and "PgbouncerClientsWaiting" not in found
    assert set(found.values()) <= {"pending", "firing"}
