"""The open-loop load driver: web requests and Celery tasks arrive on a schedule, whether
or not earlier ones have been answered.

Why our own driver rather than Locust: Locust's pacing (`constant_throughput`,
`constant_pacing`) is per simulated user and closed-loop — a user waits for its response
before its next task, so when the database slows down, Locust's arrival rate drops with it
and the burst that exhausts the slots never forms. An incident is the opposite: clients
keep arriving. Here each arrival is its own asyncio task on a plain HTTP/1.1 connection
(`Connection: close`, no client library), so the driver costs little CPU on the 2-core lab
machine and the in-flight count grows exactly as the server slows. `max_in_flight` bounds
the driver's own memory; arrivals beyond it are counted as `dropped`, never queued.

Celery tasks are published by name through the same broker the worker consumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from pgslots.lab.scenarios import LoadPlan


@dataclasses.dataclass
class Outcome:
    """One arrival: when it was due, when it finished, and how it ended."""

    kind: str  # "web" or "task"
    due: float  # seconds since the load started
    latency: float | None = None
    status: int | None = None  # HTTP status; None for tasks and transport errors
    error: str | None = None  # transport error, "dropped" (in-flight cap), "timeout"


def arrivals(plan: LoadPlan, kind: str) -> list[float]:
    """Arrival times (seconds from the start) for `kind`, stage by stage: web requests are
    Poisson (seeded); Celery tasks come as a periodic fan-out (see `fan_out_times`)."""
    if kind == "task":
        return fan_out_times(plan)
    rng = random.Random(f"{plan.seed}-{kind}")
    times: list[float] = []
    offset = 0.0
    for stage in plan.stages:
        t = offset
        if stage.web_rate > 0:
            while True:
                t += rng.expovariate(stage.web_rate)
                if t >= offset + stage.seconds:
                    break
                times.append(t)
        offset += stage.seconds
    return times


def fan_out_times(plan: LoadPlan) -> list[float]:
    """`task_batch` tasks at once, every `task_batch / task_rate` seconds, as a beat entry
    that fans out does (the incident's Celery task was such a periodic job). A batch lands
    on every idle Celery child together; that is what lets the worker's connections reach
    the reserved slots while the web app holds all its own (see `scenarios.DEFAULT_LOAD`)."""
    times: list[float] = []
    offset = 0.0
    for stage in plan.stages:
        if stage.task_rate > 0:
            interval = plan.task_batch / stage.task_rate
            t = offset + interval / 2
            while t < offset + stage.seconds:
                times.extend([t] * plan.task_batch)
                t += interval
        offset += stage.seconds
    return times


async def http_get(host: str, port: int, path: str, cookie: str, timeout: float) -> int:
    """One GET on a fresh connection; returns the status code."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
            "User-Agent: pgslots-lab\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError(f"bad status line {status_line[:60]!r}")
        await asyncio.wait_for(reader.read(), timeout)  # drain to EOF
        return int(parts[1])
    finally:
        writer.close()


class Driver:
    """Runs a `LoadPlan` against `host:port/path` and a task publisher; writes every
    outcome to `out` (JSON Lines) and keeps them for the summary."""

    def __init__(
        self,
        plan: LoadPlan,
        *,
        host: str,
        port: int,
        path: str,
        session_cookies: Sequence[str],
        publish_task: Callable[[], None] | None,
        out: IO[str],
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.host, self.port, self.path = host, port, path
        self.cookies = list(session_cookies) or [""]
        self.publish_task = publish_task
        self.out = out
        self.on_tick = on_tick
        self.outcomes: list[Outcome] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.started_at = 0.0  # epoch seconds

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.out.write(json.dumps(dataclasses.asdict(outcome)) + "\n")

    async def _web(self, due: float, cookie: str) -> None:
        outcome = Outcome("web", due)
        if self.in_flight >= self.plan.max_in_flight:
            outcome.error = "dropped"
            self._record(outcome)
            return
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        start = time.monotonic()
        try:
            outcome.status = await http_get(
                self.host, self.port, self.path, cookie, self.plan.request_timeout
            )
        except asyncio.TimeoutError:
            outcome.error = "timeout"
        except (OSError, ConnectionError) as exc:
            outcome.error = type(exc).__name__
        finally:
            self.in_flight -= 1
            outcome.latency = round(time.monotonic() - start, 6)
            self._record(outcome)

    def _task(self, due: float) -> None:
        outcome = Outcome("task", due)
        try:
            if self.publish_task is not None:
                self.publish_task()
        except Exception as exc:  # noqa: BLE001 - a failed publish is an outcome, not a crash
            outcome.error = f"publish: {type(exc).__name__}: {exc}"
        self._record(outcome)

    async def run(self) -> None:
        web_times = arrivals(self.plan, "web")
        task_times = arrivals(self.plan, "task")
        schedule = sorted([(t, "web") for t in web_times] + [(t, "task") for t in task_times])
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set()
        self.started_at = time.time()
        t0 = loop.time()
        for i, (due, kind) in enumerate(schedule):
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.on_tick is not None:
                self.on_tick(due)
            if kind == "web":
                task = asyncio.create_task(self._web(due, self.cookies[i % len(self.cookies)]))
                pending.add(task)
                task.add_done_callback(pending.discard)
            else:
                self._task(due)
        remaining = t0 + self.plan.load_seconds - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if pending:
            await asyncio.wait(pending, timeout=self.plan.request_timeout + 5)


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Attempted/failed counts and latency percentiles of the web requests."""
    web = [o for o in outcomes if o.kind == "web"]
    answered = sorted(o.latency for o in web if o.latency is not None and o.error is None)
    statuses: dict[str, int] = {}
    for o in web:
        key = str(o.status) if o.status is not None else (o.error or "error")
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "web_attempted": len(web),
        "web_ok": sum(1 for o in web if o.status == 200),
        "web_failed": sum(1 for o in web if o.status != 200),
        "web_outcomes": dict(sorted(statuses.items())),
        "latency_p50": percentile(answered, 50),
        "latency_p95": percentile(answered, 95),
        "latency_p99": percentile(answered, 99),
        "tasks_published": sum(1 for o in outcomes if o.kind == "task" and o.error is None),
    }


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-pct * len(sorted_values) // 100)))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 4)
