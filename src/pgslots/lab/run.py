"""One `pgslots lab` run: a throwaway PostgreSQL, then each scenario in turn against it.

The server is initialised and migrated once; each scenario restarts it with its own
`max_connections`, reserved slots and log directory (a restart takes under a second; an
initdb and a migrate would take several). Per scenario: (pgbouncer,) the sampler, the web
server and the Celery worker start; the open-loop load runs; a quiet tail shows what the
app still holds; then everything stops and the artifacts are collected into
`<out>/<scenario>/`:

    requests.jsonl         every arrival: due time, latency, HTTP status or transport error
    samples.jsonl          client backends over time (by role, application, state)
    newrelic/events.jsonl  every failed request and task as a New Relic TransactionError
    newrelic/nerdgraph.json  the same events in a NerdGraph NRQL result envelope
    newrelic/transactions.jsonl  every request and task as a New Relic Transaction
    postgres/postgresql.{log,csv,json}  the server's own logs (connections, FATALs)
    checks.txt             `manage.py check --tag pgslots` before the load (pgslots.django)
    pgbouncer.log, web.log, worker.log, scenario.json, result.json
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pgslots.interrupts import termination_as_exception
from pgslots.lab import app as sample
from pgslots.lab.load import Driver
from pgslots.lab.pgbouncer import TempPgbouncer, find_pgbouncer
from pgslots.lab.postgres import SUPERUSER, PgBinaries, TempPostgres, free_port
from pgslots.lab.processes import (
    RUN_MARKER,
    Child,
    ChildDied,
    Children,
    shielded,
)
from pgslots.lab.results import ScenarioResult, Skipped, measure
from pgslots.lab.sampler import Sampler
from pgslots.lab.scenarios import LoadPlan, Scenario
from pgslots.serde import to_jsonable

APP_ROLE = "app"
WORKER_SUPERUSER = "ops"
APP_DB = "appdb"
SAMPLER_SLOTS = 1

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class LabOptions:
    binaries: PgBinaries | None = None
    broker_url: str | None = None
    users: int = 20


def missing_parts(scenario: Scenario) -> str | None:
    """Why a scenario cannot run here (one line), or None."""
    if "pgbouncer" in scenario.requires and find_pgbouncer() is None:
        return "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
    return None


class Lab:
    """Runs scenarios; `run()` always leaves no process and no temporary directory behind."""

    def __init__(
        self, options: LabOptions, plan: LoadPlan, progress: Progress | None = None
    ) -> None:
        self.options = options
        self.plan = plan
        self.progress = progress or (lambda message: None)
        self.run_id = secrets.token_hex(6)
        self.children = Children(self.run_id)
        self.work_dir: Path | None = None
        self.server: TempPostgres | None = None
        self.bouncer: TempPgbouncer | None = None
        self.app_password = secrets.token_urlsafe(16)
        self.ops_password = secrets.token_urlsafe(16)
        self.secret_key = secrets.token_urlsafe(32)  # one per run: sessions are signed with it
        self.session_keys: list[str] = []
        self._current: Scenario | None = None

    # -- the whole run -------------------------------------------------------------------------

    def run(self, scenarios: Sequence[Scenario], out_dir: Path) -> list[ScenarioResult | Skipped]:
        results: list[ScenarioResult | Skipped] = []
        previous_marker = os.environ.get(RUN_MARKER)
        os.environ[RUN_MARKER] = self.run_id  # inherited by postgres and pgbouncer too
        try:
            with termination_as_exception():
                self.work_dir = Path(tempfile.mkdtemp(prefix=f"pgslots-lab-{self.run_id}-"))
                self.children.tmpdir = self.work_dir / "tmp"
                self._setup(scenarios[0])
                for scenario in scenarios:
                    reason = missing_parts(scenario)
                    if reason:
                        self.progress(f"{scenario.name}: skipped: {reason}")
                        results.append(Skipped(scenario.name, reason))
                        continue
                    results.append(self._run_scenario(scenario, out_dir / scenario.name))
        finally:
            with shielded():
                self._cleanup()
                if previous_marker is None:
                    os.environ.pop(RUN_MARKER, None)
                else:
                    os.environ[RUN_MARKER] = previous_marker
        return results

    def _cleanup(self) -> None:
        self.children.stop_all()
        if self.bouncer is not None:
            self.bouncer.stop()
            self.bouncer = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    # -- once per run --------------------------------------------------------------------------

    def _setup(self, first: Scenario) -> None:
        assert self.work_dir is not None
        self.progress("starting PostgreSQL")
        self.server = TempPostgres(
            self.options.binaries,
            settings=self._server_settings(first, self.work_dir / "pglog-setup"),
            password_auth=True,
            base_dir=self.work_dir / "pg",
        )
        self.server.start()
        self.server.create_role(APP_ROLE, password=self.app_password)
        self.server.create_role(WORKER_SUPERUSER, password=self.ops_password, superuser=True)
        self.server.create_database(APP_DB, owner=APP_ROLE)
        self._current = first
        config = self._config(first, self.work_dir / "setup", self._direct_target())
        self.progress(f"PostgreSQL {self.server.version} up; migrating the sample app")
        sample.manage(config, "migrate", "--no-input", "-v", "0")
        prepared = json.loads(
            sample.manage(config, "lab_prepare", "--users", str(self.options.users))
        )
        self.session_keys = prepared["session_keys"]

    def _server_settings(self, scenario: Scenario, log_dir: Path) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "max_connections": scenario.max_connections + SAMPLER_SLOTS,
            "superuser_reserved_connections": scenario.superuser_reserved_connections,
            "log_directory": str(log_dir),
        }
        binaries = self.server.binaries if self.server else self.options.binaries
        if scenario.reserved_connections and (binaries is None or binaries.major >= 16):
            settings["reserved_connections"] = scenario.reserved_connections
        return settings

    def _target(self, host: str, port: int, scenario: Scenario) -> sample.DatabaseTarget:
        worker = (
            (WORKER_SUPERUSER, self.ops_password)
            if scenario.worker_superuser
            else (APP_ROLE, self.app_password)
        )
        return sample.DatabaseTarget(
            host, port, APP_DB, web=(APP_ROLE, self.app_password), worker=worker
        )

    def _direct_target(self) -> sample.DatabaseTarget:
        assert self.server is not None and self._current is not None
        return self._target(self.server.host, self.server.port, self._current)

    def _config(self, scenario: Scenario, directory: Path, target: sample.DatabaseTarget) -> Path:
        broker = sample.broker_settings(self.options.broker_url, directory / "broker")
        return sample.write_config(
            directory / "settings.json",
            scenario,
            target,
            events_dir=directory / "events",
            broker=broker,
            secret_key=self.secret_key,
        )

    # -- one scenario --------------------------------------------------------------------------

    def _run_scenario(self, scenario: Scenario, out: Path) -> ScenarioResult:
        assert self.server is not None and self.work_dir is not None
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "scenario.json").write_text(json.dumps(to_jsonable(scenario), indent=2))
        work = self.work_dir / scenario.name
        log_dir = work / "pglog"
        self.progress(f"{scenario.name}: {scenario.change}")
        self._current = scenario
        self.server.restart(self._server_settings(scenario, log_dir))
        target = self._direct_target()
        if scenario.pgbouncer_pool_size is not None:
            target = self._start_pgbouncer(scenario)
        config = self._config(scenario, work, target)
        (out / "checks.txt").write_text(
            sample.run_checks(config)
        )  # what pgslots.django says before the load
        sampler = Sampler(
            self.server.dsn(SUPERUSER, "postgres"),
            out / "samples.jsonl",
            pgbouncer_dsn=self.bouncer.admin_dsn() if self.bouncer else None,
        ).start()
        started: list[Child] = []
        load_started = time.time()
        try:
            port = free_port()
            web = self.children.spawn(
                "web server",
                sample.web_command(scenario, port),
                log=out / "web.log",
                env=sample.app_env(config, "web"),
            )
            # Celery's warm shutdown (SIGTERM) takes about 4.5 s with nothing left to do; by
            # then the quiet tail has drained the queue, so a cold one (SIGQUIT) loses nothing.
            worker = self.children.spawn(
                "celery worker",
                sample.worker_command(scenario),
                log=out / "worker.log",
                env=sample.app_env(config, "worker"),
                stop_signal=signal.SIGQUIT,
            )
            started = [web, worker]
            sample.wait_http_ready(web, port, self.children)
            sample.wait_worker_ready(worker, self.children)
            self.progress(
                f"{scenario.name}: load for {self.plan.load_seconds:.0f} s, then {self.plan.tail_seconds:.0f} s quiet"
            )
            load_started = time.time()
            outcomes = self._drive(port, config, out, started)
            self._quiet_tail(started)
        finally:
            sampler.stop()  # first: its last sample is the end of the quiet tail
            self.children.stop(started, grace=5.0)
            if self.bouncer is not None:
                shutil.copy(self.bouncer.logfile, out / "pgbouncer.log")
                self.bouncer.stop()
                self.bouncer = None
            self.server.shutdown()
            _copy_logs(self.server, out / "postgres")
        _collect_events(work / "events", out / "newrelic")
        result = measure(
            scenario, out, self.plan, outcomes, sampler.samples, load_started, self.server.version
        )
        (out / "result.json").write_text(json.dumps(result.to_json(), indent=2))
        self.progress(f"{scenario.name}: {result.one_line()}")
        return result

    def _start_pgbouncer(self, scenario: Scenario) -> sample.DatabaseTarget:
        assert self.server is not None
        self.bouncer = TempPgbouncer(
            self.server,
            {APP_DB: APP_DB},
            settings={
                "pool_mode": "transaction",
                "default_pool_size": scenario.pgbouncer_pool_size,
                "reserve_pool_size": 0,
                "max_client_conn": 2000,
                "query_wait_timeout": 30,
            },
            passwords={APP_ROLE: self.app_password, WORKER_SUPERUSER: self.ops_password},
        ).start()
        return self._target(self.bouncer.host, self.bouncer.port, scenario)

    def _drive(self, port: int, config: Path, out: Path, started: list[Child]) -> list[Any]:
        publish = _task_publisher(config)
        last_check = [0.0]

        def on_tick(due: float) -> None:
            if due - last_check[0] >= 1.0:
                last_check[0] = due
                self._check_alive(started)

        with (out / "requests.jsonl").open("w", buffering=1, encoding="utf-8") as requests_out:
            driver = Driver(
                self.plan,
                host="127.0.0.1",
                port=port,
                path=sample.ITEMS_PATH,
                session_cookies=[f"sessionid={key}" for key in self.session_keys],
                publish_task=publish,
                out=requests_out,
                on_tick=on_tick,
            )
            asyncio.run(driver.run())
        return driver.outcomes

    def _quiet_tail(self, started: list[Child]) -> None:
        deadline = time.monotonic() + self.plan.tail_seconds
        while time.monotonic() < deadline:
            self._check_alive(started)
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _check_alive(self, started: list[Child]) -> None:
        """Abort the run, naming the culprit, when a server it depends on died."""
        self.children.check_alive(started)
        if self.server is not None and not self.server.running:
            raise ChildDied(f"PostgreSQL exited; see {self.server.logs.stderr}")
        if self.bouncer is not None and self.bouncer.pid is not None and not self.bouncer.running:
            raise ChildDied("pgbouncer exited")


def _task_publisher(config: Path) -> Callable[[], None]:
    """A Celery producer for the scenario's broker, publishing the sample task by name.

    With kombu's filesystem transport the producer writes each message file in place and a
    polling consumer can read it half-written (an empty payload crashes the worker). So the
    producer writes into a staging folder and we move each file into the worker's inbox
    with an atomic rename."""
    from celery import Celery

    broker = json.loads(config.read_text())["broker"]
    options = dict(broker.get("transport_options", {}))
    staging: Path | None = None
    inbox: Path | None = None
    if broker["url"].startswith("filesystem"):
        inbox = Path(options["data_folder_in"])
        staging = inbox.parent / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        options["data_folder_out"] = str(staging)
    producer = Celery("pgslots-lab-driver", broker=broker["url"])
    producer.conf.broker_transport_options = options
    producer.conf.task_ignore_result = True

    def publish() -> None:
        producer.send_task(sample.TASK_NAME)
        if staging is not None and inbox is not None:
            for message in staging.iterdir():
                os.replace(message, inbox / message.name)

    return publish


def _copy_logs(server: TempPostgres, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in (server.logs.stderr, server.logs.csvlog, server.logs.jsonlog):
        if path.exists():
            shutil.copy(path, dest / path.name)


def _collect_events(events_dir: Path, dest: Path) -> None:
    """Merge the per-process JSON Lines files, in time order, into the New Relic exports."""
    from pgslots.lab.nrexport import write_exports

    write_exports(events_dir, dest)


@contextlib.contextmanager
def temporary_out(out_dir: Path | None) -> Iterator[Path]:
    """The artifacts directory: the user's (kept), or a temporary one (deleted)."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        yield out_dir
        return
    path = Path(tempfile.mkdtemp(prefix="pgslots-lab-out-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
