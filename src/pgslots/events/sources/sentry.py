"""Sentry: events as the SDK sends them and as the API returns them (one event, a list of
events, or JSON Lines), in both the SDK's shape (`exception.values`, `timestamp`, tags as a
dict) and the API's stored shape (`entries: [{"type": "exception", "data": ...}]`,
`dateCreated`, tags as `[{"key", "value"}]` or `[[key, value]]`) (domain reference §6.2).

Chained exceptions are listed oldest cause first, so the raised (outermost) exception is
the last value: for Django it is `django.db.utils.OperationalError`, whose text is the
driver's. Its class becomes `error_class` in New Relic's `module:Class` form, so facets
read the same across sources. A Celery task's event (Sentry's Celery integration names the
transaction after the task and sets a `celery_task_id` tag or a `queue.task.celery` trace
op) gets the transaction `celery:<task>`, which the timeline recognises as worker side.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.sources import (
    ReadOptions,
    ReadStats,
    json_records,
    register,
)
from pgslots.events.times import from_epoch, parse_time

_MARKERS = re.compile(
    r'"(?:event_id|eventID|culprit|groupID)"\s*:|"exception"\s*:\s*\{\s*"values"|"entries"\s*:'
)


def _tags(event: Mapping[str, Any]) -> dict[str, str]:
    tags = event.get("tags")
    result: dict[str, str] = {}
    if isinstance(tags, Mapping):
        result = {str(k): str(v) for k, v in tags.items() if v is not None}
    elif isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, Mapping) and "key" in tag:
                result[str(tag["key"])] = str(tag.get("value"))
            elif isinstance(tag, (list, tuple)) and len(tag) == 2:
                result[str(tag[0])] = str(tag[1])
    return result


def _exception_values(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    exception = event.get("exception")
    if isinstance(exception, Mapping) and isinstance(exception.get("values"), list):
        return [v for v in exception["values"] if isinstance(v, Mapping)]
    entries = event.get("entries")
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping) and entry.get("type") == "exception":
            data = entry.get("data")
            if isinstance(data, Mapping) and isinstance(data.get("values"), list):
                return [v for v in data["values"] if isinstance(v, Mapping)]
    return []


def _time(event: Mapping[str, Any], tz: dt.tzinfo) -> tuple[dt.datetime, bool] | None:
    for key in ("timestamp", "dateCreated", "datetime", "dateReceived", "received"):
        value = event.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return from_epoch(value), False
            except (OverflowError, OSError, ValueError):
                return None
        if isinstance(value, str):
            return parse_time(value, tz)
    return None


def _is_celery(event: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    contexts = event.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, Mapping) else None
    op = trace.get("op") if isinstance(trace, Mapping) else None
    return "celery_task_id" in tags or (isinstance(op, str) and op.startswith("queue.task"))


def event_from_sentry(
    event: Any, number: int, path: Path, options: ReadOptions, stats: ReadStats
) -> ErrorEvent | str:
    """One Sentry event as an `ErrorEvent`, or the reason it cannot be one."""
    if not isinstance(event, Mapping):
        return "not an event object"
    values = _exception_values(event)
    outermost = values[-1] if values else {}
    message = next(
        (str(v.get("value")) for v in reversed(values) if v.get("value")),
        str(event.get("message") or event.get("title") or ""),
    )
    if not message and not outermost:
        return "no exception and no message"
    when = _time(event, options.tz)
    if when is None:
        return "no timestamp"
    if when[1]:
        stats.naive_time()
    tags = _tags(event)
    kind = outermost.get("type")
    module = outermost.get("module")
    error_class = f"{module}:{kind}" if module and kind else (str(kind) if kind else None)
    transaction = event.get("transaction") or tags.get("transaction") or event.get("culprit")
    if transaction and _is_celery(event, tags):
        transaction = f"celery:{transaction}"
    project = event.get("project") if isinstance(event.get("project"), str) else None
    environment = event.get("environment") or tags.get("environment")
    app = f"{project} ({environment})" if project and environment else project or environment
    return ErrorEvent(
        ts=when[0],
        message=message,
        source=SourceRef("sentry", str(path), number),
        error_class=error_class,
        transaction=str(transaction) if transaction else None,
        host=event.get("server_name") or tags.get("server_name"),
        app=str(app) if app else None,
    )


class Sentry:
    name = "sentry"
    description = (
        "Sentry events (SDK payloads, API event JSON with 'entries', lists or JSON Lines of them)"
    )
    priority = 10

    def sniff(self, head: str, path: Path) -> bool:
        start = head.lstrip("\ufeff \t\r\n")[:1]
        return start in ("{", "[") and bool(_MARKERS.search(head))

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        doc, lines = json_records(path, options, stats)
        as_lines = lines is not None
        if lines is not None:
            records: Iterator[tuple[int, Any]] = lines
        else:
            if isinstance(doc, Mapping) and isinstance(doc.get("data"), list):
                doc = doc["data"]  # an API page wrapped as {"data": [...]}
            items = doc if isinstance(doc, list) else [doc]
            if not items:
                raise InputError("an empty list: no Sentry events", path=str(path))
            stats.records += len(items)
            records = iter(enumerate(items, 1))
        for number, raw in records:
            result = event_from_sentry(raw, number, path, options, stats)
            if isinstance(result, str):
                stats.skip(number, result, unit="line" if as_lines else "row")
            else:
                yield result


register(Sentry())
