"""The other servers the audit knows, on real processes: gunicorn `sync` (one connection per
worker, whatever the load) and `uvicorn --workers --limit-concurrency` (503 beyond the
limit, backends bounded by workers x limit)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pgslots.lab.results import WEB_APP, ScenarioResult
from pgslots.lab.run import Lab, LabOptions
from pgslots.lab.scenarios import BASELINE, DEFAULT_LOAD, SCENARIOS, scaled_load

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SYNC = dataclasses.replace(
    BASELINE, name="wsgi-sync", change="gunicorn -k sync", server="sync", web_processes=3
)


def peak_web(result: ScenarioResult) -> int:
    lines = (Path(result.artifacts) / "samples.jsonl").read_text().splitlines()
    return max(json.loads(line)["by_app"].get(WEB_APP, 0) for line in lines)


def test_sync_and_limit_concurrency(tmp_path):
    lab = Lab(LabOptions(), scaled_load(DEFAULT_LOAD, 1.0, duration=0.4))
    sync, limited = lab.run([SYNC, SCENARIOS["limit-concurrency"]], tmp_path)
    assert isinstance(sync, ScenarioResult) and isinstance(limited, ScenarioResult)
    # sync: at most one connection per worker, persistent (CONN_MAX_AGE=60), reused.
    assert 0 < peak_web(sync) <= SYNC.web_processes
    assert sync.errors_by_category == {}
    transactions = (Path(sync.artifacts) / "newrelic" / "transactions.jsonl").read_text()
    assert "WebTransaction/Function/pgslots.lab.sampleapp.views:item_list" in transactions
    # uvicorn --limit-concurrency: 503s instead of slot errors, backends bounded.
    scenario = SCENARIOS["limit-concurrency"]
    assert limited.web_outcomes.get("503", 0) > 0
    assert peak_web(limited) <= scenario.web_processes * scenario.limit_concurrency
    assert not any("too_many" in c or "reserved" in c for c in limited.errors_by_category)
