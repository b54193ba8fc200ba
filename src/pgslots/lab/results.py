"""What one scenario measured, computed from its artifacts only (so a result can always be
checked against the files it came from, and recomputed from a kept `--out` directory).

* web requests: from the driver's `requests.jsonl` (attempted, failed, status mix,
  latency percentiles of answered requests, throughput of successful ones);
* tasks: published by the driver, run and failed per the `Transaction` events;
* errors: the New Relic `TransactionError` events, by category (`events.taxonomy`),
  by transaction name, and "before the view ran" (named after a middleware);
* the error curve: errors per bucket of the load, and its shape as `pgslots events` reads it
  from the New Relic export (`events.shape`: the same verdict, whatever the buckets);
* client backends: peak, per application, the time series, and what was still held at
  the end of the quiet tail (the leak that outlives the burst);
* server FATALs by category, from the server's csvlog;
* the `pgslots.django` check ids printed before the load (`checks.txt`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgslots.events.model import SLOT_EXHAUSTION
from pgslots.events.taxonomy import classify, combination_key
from pgslots.lab.load import Outcome, summarise
from pgslots.lab.scenarios import LoadPlan, Scenario

VIEW_PREFIX = "WebTransaction/Function/pgslots.lab.sampleapp.views:"
WEB_APP = "lab-web"
WORKER_APP = "lab-worker"
LEAK_CHECK = "pgslots.W003"  # persistent connections under ASGI (PGS003)


@dataclasses.dataclass(frozen=True)
class Skipped:
    scenario: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "skipped": self.reason}


@dataclasses.dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    change: str
    postgres: str
    max_connections: int  # the deployment's setting (the sampler's extra slot not included)
    usable_slots: int
    cap: int | None  # the most connections the shape can hold, when bounded (§7.1)
    load_seconds: float
    load_started: float  # epoch seconds: where the load's first stage began
    stage_seconds: tuple[float, ...]
    web_attempted: int
    web_failed: int
    web_outcomes: dict[str, int]
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    throughput: float  # successful web requests per second of load
    tasks_published: int
    tasks_run: int
    tasks_failed: int
    errors_total: int
    errors_by_category: dict[str, int]  # each event counted under every category it carries
    errors_by_combination: dict[str, int]
    errors_by_transaction: dict[str, int]
    web_errors_before_view: int
    web_errors: int
    error_curve: tuple[int, ...]  # errors per bucket of the load
    bucket_seconds: float
    server_fatals: dict[str, int]  # category -> FATAL lines in the server log
    peak_backends: int
    peak_backends_by_app: dict[str, int]
    backends_after_burst: int  # at the end of the quiet tail
    idle_web_after_burst: int
    oldest_idle_after_burst: float
    pgbouncer_peak_waiting: int | None
    series: tuple[tuple[float, int, int, int], ...]  # (t since load start, total, web, worker)
    artifacts: str
    error_shape: str = (
        ""  # the shape label `pgslots events` gives the New Relic export ("" if none)
    )
    checks: tuple[
        str, ...
    ] = ()  # pgslots.django check ids before the load (checks.txt), e.g. "pgslots.W003"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["error_curve"] = tuple(values["error_curve"])
        values["checks"] = tuple(values.get("checks", ()))
        values["stage_seconds"] = tuple(values["stage_seconds"])
        values["series"] = tuple(tuple(p) for p in values["series"])
        return cls(**values)

    @property
    def failed_share(self) -> float:
        return self.web_failed / self.web_attempted if self.web_attempted else 0.0

    def checks_verdict(self) -> str:
        """Whether the run agrees with the checks: a warning (or error) before the load, and
        trouble in the run, or neither. Trouble is slot errors, or, after the leak warning
        (W003), web connections still held idle after the burst, the leak's own signature
        (a pool or WSGI threads keep connections by design: that is not trouble)."""
        warned = [c for c in self.checks if c.startswith(("pgslots.W", "pgslots.E"))]
        slot_errors = sum(self.errors_by_category.get(c.value, 0) for c in SLOT_EXHAUSTION)
        seen = [f"{slot_errors} slot error{'s' if slot_errors != 1 else ''}"] if slot_errors else []
        if self.idle_web_after_burst and LEAK_CHECK in self.checks:
            seen.append(f"{self.idle_web_after_burst} idle web connections held after the burst")
        run = f"the run had {', '.join(seen)}" if seen else "the run had no slot error"
        if bool(warned) == bool(seen):
            return f"agrees: {'warned' if warned else 'no warning'}; {run}"
        if warned:
            return f"disagrees: warned, but {run}"
        return (
            f"disagrees: no warning, but {run} (the server command's concurrency is not in the settings: "
            "pgslots audit reads it)"
        )

    def one_line(self) -> str:
        return (
            f"web {self.web_failed}/{self.web_attempted} failed, tasks {self.tasks_failed}/{self.tasks_run} failed, "
            f"peak {self.peak_backends} backends, {self.backends_after_burst} still held after the burst"
        )


def measure(
    scenario: Scenario,
    out: Path,
    plan: LoadPlan,
    outcomes: Sequence[Outcome],
    samples: Sequence[dict[str, Any]],
    load_started: float,
    postgres_version: str,
) -> ScenarioResult:
    summary = summarise(outcomes)
    errors = _read_jsonl(out / "newrelic" / "events.jsonl")
    transactions = _read_jsonl(out / "newrelic" / "transactions.jsonl")
    tasks = [
        t for t in transactions if str(t.get("name", "")).startswith("OtherTransaction/Celery/")
    ]

    by_category: Counter[str] = Counter()
    by_combination: Counter[str] = Counter()
    for event in errors:
        categories = classify(event.get("error.message", ""), None, event.get("error.class"))
        by_combination[combination_key(categories)] += 1
        for category in categories:
            by_category[category.value] += 1
    by_transaction = Counter(str(e.get("transactionName")) for e in errors)
    web_errors = [
        e for e in errors if str(e.get("transactionName", "")).startswith("WebTransaction/")
    ]
    before_view = [
        e for e in web_errors if not str(e.get("transactionName")).startswith(VIEW_PREFIX)
    ]

    bucket = error_bucket(plan)
    n_buckets = int(-(-plan.load_seconds // bucket))
    curve = [0] * n_buckets
    for event in errors:
        offset = event["timestamp"] / 1000.0 - load_started
        if 0 <= offset < plan.load_seconds:
            curve[min(n_buckets - 1, int(offset // bucket))] += 1

    series = tuple(
        (
            round(s["ts"] - load_started, 2),
            int(s["client_backends"]),
            int(s["by_app"].get(WEB_APP, 0)),
            int(s["by_app"].get(WORKER_APP, 0)),
        )
        for s in samples
    )
    during = [p for p in series if p[0] >= -1.0]
    peak_by_app = {
        WEB_APP: max((p[2] for p in during), default=0),
        WORKER_APP: max((p[3] for p in during), default=0),
    }
    last = samples[-1] if samples else {}
    waiting = [s["pgbouncer"]["cl_waiting"] for s in samples if "pgbouncer" in s]

    return ScenarioResult(
        scenario=scenario.name,
        change=scenario.change,
        postgres=postgres_version,
        max_connections=scenario.max_connections,
        usable_slots=scenario.usable_slots,
        cap=scenario.cap,
        load_seconds=plan.load_seconds,
        load_started=round(load_started, 3),
        stage_seconds=tuple(stage.seconds for stage in plan.stages),
        web_attempted=summary["web_attempted"],
        web_failed=summary["web_failed"],
        web_outcomes=summary["web_outcomes"],
        latency_p50=summary["latency_p50"],
        latency_p95=summary["latency_p95"],
        latency_p99=summary["latency_p99"],
        throughput=round(summary["web_ok"] / plan.load_seconds, 2) if plan.load_seconds else 0.0,
        tasks_published=summary["tasks_published"],
        tasks_run=len(tasks),
        tasks_failed=sum(1 for t in tasks if t.get("error")),
        errors_total=len(errors),
        errors_by_category=dict(by_category.most_common()),
        errors_by_combination=dict(by_combination.most_common()),
        errors_by_transaction=dict(by_transaction.most_common()),
        web_errors_before_view=len(before_view),
        web_errors=len(web_errors),
        error_curve=tuple(curve),
        bucket_seconds=round(bucket, 2),
        server_fatals=server_fatals(out / "postgres" / "postgresql.csv"),
        peak_backends=max((p[1] for p in during), default=0),
        peak_backends_by_app=peak_by_app,
        backends_after_burst=int(last.get("client_backends", 0)),
        idle_web_after_burst=int(last.get("idle_by_app", {}).get(WEB_APP, 0)),
        oldest_idle_after_burst=float(last.get("oldest_idle_s", 0.0)),
        pgbouncer_peak_waiting=max(waiting) if waiting else None,
        series=series,
        artifacts=str(out),
        error_shape=export_shape(out / "newrelic" / "nerdgraph.json"),
        checks=read_checks(out / "checks.txt"),
    )


CHECK_ID = re.compile(r"\((pgslots\.[EWI]\d{3})\)")


def read_checks(path: Path) -> tuple[str, ...]:
    """The check ids in `manage.py check` output, each once, in the order printed."""
    if not path.exists():
        return ()
    return tuple(dict.fromkeys(CHECK_ID.findall(path.read_text(encoding="utf-8"))))


def export_shape(export: Path) -> str:
    """The shape label of the New Relic export, read exactly as `pgslots events EXPORT`
    reads it (the verdict does not depend on buckets or alignment), so the demo and the
    events command say the same thing."""
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions

    if not export.exists():
        return ""
    incident = investigate([export], ReadOptions(), TimelineOptions())
    return incident.shape.label if incident.shape is not None else ""


def error_bucket(plan: LoadPlan) -> float:
    """The error curve's bucket: one stage when the stages are equal, else a sixth of the load."""
    lengths = {stage.seconds for stage in plan.stages}
    return lengths.pop() if len(lengths) == 1 else max(1.0, plan.load_seconds / 6)


def server_fatals(csvlog: Path) -> dict[str, int]:
    """FATAL lines of the server's csvlog, by category of their message."""
    counts: Counter[str] = Counter()
    if not csvlog.exists():
        return {}
    with csvlog.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            if len(row) > 13 and row[11] == "FATAL":
                for category in classify(row[13], row[12] or None):
                    counts[category.value] += 1
    return dict(counts.most_common())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
