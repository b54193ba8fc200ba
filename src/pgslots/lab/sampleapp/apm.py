"""An APM recorder that names transactions and records errors the way the New Relic
Python agent does, without the agent (domain reference §3.4 and §6.1).

Why not the real agent: it needs an account and a network connection to New Relic to
record anything. What the lab needs from it is only its *naming rule* and its *event
shape*, so that `pgslots events` reads lab output exactly like a real export:

* a web transaction starts named after its URI (`WebTransaction/Uri/items/`);
* entering a middleware's `__call__` renames it to that middleware at priority 2
  (`django.middleware.csrf:CsrfViewMiddleware`);
* a view middleware's `process_view` renames it on the way out (in a `finally`), priority 2
  (`django.middleware.csrf:CsrfViewMiddleware.process_view`), unless it was renamed inside;
* entering the view renames it at priority 5 (`pgslots.lab.sampleapp.views:item_list`);
* a name of lower priority never replaces a higher one; equal priority does.

So an exception raised before the view is entered (for instance by the per-view
`transaction.atomic` wrapper of `ATOMIC_REQUESTS`, which opens the connection) is recorded
under the last middleware entered, as in the incident. A Celery task is named
`OtherTransaction/Celery/<task name>`.

Each process appends its events to its own JSON Lines file in the events directory (one
`write` per line, no locking needed); the lab merges them after the run.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PRIORITY_URI = 0
PRIORITY_MIDDLEWARE = 2
PRIORITY_VIEW = 5

_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "pgslots_apm_txn", default=None
)


def callable_name(obj: Any) -> str:
    """`module:qualname`, the agent's `callable_name` for functions, methods and classes."""
    target = getattr(obj, "__func__", obj)
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}:{qualname}"


class Transaction:
    """One web request or task: its start time, its current name and the errors it met.
    Mutable on purpose: Django runs a request's sync parts in other threads, each with a
    copy of the context, and they must all rename the same transaction."""

    def __init__(
        self, group: str, name: str, *, uri: str | None = None, method: str | None = None
    ) -> None:
        self.group = group  # "WebTransaction" or "OtherTransaction"
        self.name = name
        self.priority = PRIORITY_URI
        self.start = time.time()
        self.uri = uri
        self.method = method
        self.status: int | None = None
        self.error: BaseException | None = None
        self.guid = secrets.token_hex(8)

    @property
    def full_name(self) -> str:
        return f"{self.group}/{self.name}"

    def set_name(self, name: str, priority: int) -> None:
        if priority >= self.priority:
            self.name = name
            self.priority = priority

    def record_exception(self, exc: BaseException | None) -> None:
        if exc is not None and self.error is None:
            self.error = exc


def current() -> Transaction | None:
    return _current.get()


# -- recording ----------------------------------------------------------------------------------


class Recorder:
    """Writes this process's events, as the agent would send them, to JSON Lines files:
    `errors-<pid>.jsonl` (TransactionError) and `transactions-<pid>.jsonl` (Transaction)."""

    def __init__(self, directory: str | Path, app_name: str) -> None:
        self.directory = Path(directory)
        self.app_name = app_name
        self.host = socket.gethostname()
        self._files: dict[str, Any] = {}
        self._pid = -1

    def _file(self, kind: str) -> Any:
        if self._pid != os.getpid():  # after a fork (prefork children), reopen our own files
            self._files, self._pid = {}, os.getpid()
        handle = self._files.get(kind)
        if handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{kind}-{os.getpid()}.jsonl"
            handle = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open for the process
            self._files[kind] = handle
        return handle

    def finish(self, txn: Transaction) -> None:
        duration = round(time.time() - txn.start, 6)
        common: dict[str, Any] = {
            "timestamp": int(1000.0 * txn.start),  # the transaction's start, epoch ms (§6.1)
            "appName": self.app_name,
            "host": self.host,
            "transactionName": txn.full_name,
            "duration": duration,
            "guid": txn.guid,
        }
        if txn.uri is not None:
            common.update({"request.uri": txn.uri, "request.method": txn.method})
        if txn.status is not None:
            common.update({"http.statusCode": txn.status, "httpResponseCode": str(txn.status)})
        self._file("transactions").write(
            json.dumps(
                {
                    "type": "Transaction",
                    "name": txn.full_name,
                    "error": txn.error is not None,
                    **common,
                }
            )
            + "\n"
        )
        if txn.error is not None:
            error = txn.error
            event = {
                "type": "TransactionError",
                **common,
                "error.class": f"{type(error).__module__}:{type(error).__qualname__}",
                "error.message": str(error),
                "error.expected": False,
                "nr.transactionGuid": txn.guid,
            }
            self._file("errors").write(json.dumps(event) + "\n")


_RECORDER: Recorder | None = None


def recorder() -> Recorder:
    global _RECORDER
    if _RECORDER is None:
        from django.conf import settings

        role = os.environ.get("PGSLOTS_LAB_ROLE", "web")
        _RECORDER = Recorder(settings.LAB_EVENTS_DIR, f"{settings.LAB_APP_NAME}-{role}")
    return _RECORDER


# -- web: ASGI and WSGI entry points ------------------------------------------------------------


@contextlib.contextmanager
def _active(txn: Transaction) -> Iterator[Transaction]:
    """Make `txn` the current transaction for the block; record what escapes it, and write
    its events when it ends."""
    token = _current.set(txn)
    try:
        yield txn
    except BaseException as exc:
        txn.record_exception(exc)
        raise
    finally:
        _current.reset(token)
        recorder().finish(txn)


def instrument_asgi(app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the ASGI application: one transaction per HTTP request."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "http":
            return await app(scope, receive, send)
        path = scope.get("path", "/")
        txn = Transaction("WebTransaction", f"Uri{path}", uri=path, method=scope.get("method"))

        async def capture_send(message: dict[str, Any]) -> Any:
            if message.get("type") == "http.response.start":
                txn.status = int(message["status"])
            return await send(message)

        with _active(txn):
            return await app(scope, receive, capture_send)

    return application


def instrument_wsgi(app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the WSGI application: one transaction per request (per worker thread)."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "/")
        txn = Transaction(
            "WebTransaction", f"Uri{path}", uri=path, method=environ.get("REQUEST_METHOD")
        )

        def capture_start_response(status: str, headers: Any, *args: Any) -> Any:
            txn.status = int(status.split()[0])
            return start_response(status, headers, *args)

        with _active(txn):
            return app(environ, capture_start_response)

    return application


# -- Django: middleware, view, uncaught exceptions ----------------------------------------------


def _wrap_middleware_call(cls: Any) -> None:  # a middleware class, patched in place
    original = cls.__call__
    name = f"Function/{callable_name(cls)}"

    @functools.wraps(original)
    def __call__(self: Any, request: Any) -> Any:
        txn = current()
        if txn is not None:
            txn.set_name(name, PRIORITY_MIDDLEWARE)
        return original(self, request)

    cls.__call__ = __call__


def _wrap_process_view(cls: Any) -> None:  # a middleware class, patched in place
    original = cls.process_view
    name = f"Function/{callable_name(cls)}.process_view"

    @functools.wraps(original)
    def process_view(self: Any, *args: Any, **kwargs: Any) -> Any:
        txn = current()
        before = txn.name if txn else None
        try:
            return original(self, *args, **kwargs)
        finally:
            if txn is not None and txn.name == before:
                txn.set_name(name, PRIORITY_MIDDLEWARE)

    cls.process_view = process_view


def instrument_middleware(paths: list[str]) -> None:
    """Wrap every middleware class named in settings.MIDDLEWARE, once, before the handler
    builds its chain (called from the app's `ready()`)."""
    from django.utils.module_loading import import_string

    for path in paths:
        cls = import_string(path)
        if getattr(cls, "_pgslots_apm", False):
            continue
        _wrap_middleware_call(cls)
        if "process_view" in vars(cls):
            _wrap_process_view(cls)
        cls._pgslots_apm = True


def view(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a view: entering it names the transaction after it (priority 5)."""
    name = f"Function/{callable_name(func)}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        txn = current()
        if txn is not None:
            txn.set_name(name, PRIORITY_VIEW)
        return func(*args, **kwargs)

    return wrapper


def _on_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """`got_request_exception` is sent inside Django's exception handling, where
    `sys.exc_info()` holds the exception (asgiref re-raises it in the worker thread)."""
    txn = current()
    if txn is not None:
        txn.record_exception(sys.exc_info()[1])


def connect_django() -> None:
    from django.conf import settings
    from django.core.signals import got_request_exception

    instrument_middleware(list(settings.MIDDLEWARE))
    got_request_exception.connect(_on_request_exception, dispatch_uid="pgslots-apm")


# -- Celery ---------------------------------------------------------------------------------------

_TASKS: dict[str, Transaction] = {}


def connect_celery() -> None:
    from celery import signals

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
        _TASKS[task_id] = Transaction("OtherTransaction", f"Celery/{task.name}")

    @signals.task_failure.connect(weak=False)
    def _failure(task_id: str = "", exception: BaseException | None = None, **kwargs: Any) -> None:
        txn = _TASKS.get(task_id)
        if txn is not None:
            txn.record_exception(exception)

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id: str = "", **kwargs: Any) -> None:
        txn = _TASKS.pop(task_id, None)
        if txn is not None:
            recorder().finish(txn)
