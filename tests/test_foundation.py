"""The shared parts: JSON round trips of the core types, redaction, the codes registry, the CLI shell."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

from typer.testing import CliRunner

from pgslots.cli import app, main  # noqa: F401
from pgslots.deploy.model import Demand, Quantity
from pgslots.events.model import Category, ErrorEvent, SourceRef
from pgslots.evidence import Evidence, Resolution
from pgslots.live.model import BackendGroup, Snapshot
from pgslots.redact import Redactor, redact_dsn, redact_value
from pgslots.serde import from_jsonable, to_jsonable


def test_error_event_round_trips_through_json():
    event = ErrorEvent(
        ts=dt.datetime(2026, 5, 11, 22, 22, 5, tzinfo=dt.timezone.utc),
        message="connection failed: FATAL:  sorry, too many clients already",
        source=SourceRef("newrelic", "export.json", 3),
        categories=(Category.TOO_MANY_CLIENTS, Category.RESERVED_SUPERUSER),
        transaction="WebTransaction/Function/x:y",
    )
    data = json.loads(json.dumps(to_jsonable(event)))
    assert data["ts"] == "2026-05-11T22:22:05.000Z"
    assert from_jsonable(ErrorEvent, data) == event


def test_snapshot_and_quantities_round_trip():
    snapshot = Snapshot(
        taken_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        target="host=db user=app password=****",
        max_connections=100,
        backends=(BackendGroup("appdb", "app", "web", "10.0.0.1", "idle", 7, 12.5),),
    )
    assert from_jsonable(Snapshot, to_jsonable(snapshot)) == snapshot
    quantity = Quantity(
        None, (Evidence("a.env", 3, "X=1", Resolution.ENV_FILE),), unknown="web.hosts"
    )
    assert from_jsonable(Quantity, to_jsonable(quantity)) == quantity
    assert from_jsonable(Demand, to_jsonable(Demand(4, None))).unbounded


def test_dsn_passwords_are_masked_in_every_form():
    assert redact_dsn("postgres://app:hunter22@db:5432/x") == "postgres://app:****@db:5432/x"
    assert redact_dsn("host=db password=hunter22 user=app") == "host=db password=**** user=app"
    assert redact_dsn("host=db password='a b\\'c' user=app") == "host=db password=**** user=app"
    assert (
        redact_dsn("postgresql:///x?host=/s&password=hunter22")
        == "postgresql:///x?host=/s&password=****"
    )
    assert redact_value("DJANGO_SECRET_KEY", "abcdefgh") == "****"
    assert redact_value("DATABASE_URL", "postgres://u:p4ss@h/d") == "postgres://u:****@h/d"
    assert redact_value("WEB_CONCURRENCY", "4") == "4"


def test_registered_secrets_are_scrubbed_from_output():
    redactor = Redactor()
    redactor.register_named("SECRET_KEY", "s3cr3t-value")
    redactor.register_named("DATABASE_URL", "postgres://u:pw-in-url@h/d")
    out = redactor.scrub("key s3cr3t-value and pw-in-url appear")
    assert "s3cr3t-value" not in out and "pw-in-url" not in out


def test_cli_help_and_version_work_as_installed():
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "codes" in result.stdout
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("pgslots ")


def test_unknown_format_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", "codes", "--format", "html"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "is not one of" in result.stderr
