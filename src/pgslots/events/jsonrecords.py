"""The fields of the JSON records that Python logging libraries write, read by name.

* python-json-logger: `message`, the traceback as text in `exc_info`, the time in
  `asctime` (logging's `2026-11-25 15:12:29,234`, no zone) or `timestamp` (ISO 8601);
* structlog's `JSONRenderer`: `event`, `timestamp` (`TimeStamper(fmt="iso")`), the traceback
  as text in `exception` (`format_exc_info`) or as a list of dicts (`dict_tracebacks`);
* Elastic Common Schema (`ecs-logging`): `@timestamp`, `message`, `error.stack_trace`
  (nested as `{"error": {"stack_trace": ...}}` or dotted);
* Cloud Logging's structured payloads: `message` (the traceback often inside it), `time`
  or `timestamp`.

A record becomes the same lines a text log would hold (the message, then the traceback),
so one traceback reader serves both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

_TIME_KEYS = ("@timestamp", "timestamp", "asctime", "time", "ts", "created")
_MESSAGE_KEYS = ("message", "event", "msg")
_TRACE_KEYS = ("exc_info", "exception", "error.stack_trace", "stack_trace", "exc_text", "traceback")
# Fields that may name the request or the task, besides the message.
_HINT_KEYS = (
    "request",
    "path",
    "request_path",
    "url.path",
    "http.request.path",
    "task_name",
    "task",
)


@dataclasses.dataclass(frozen=True)
class JsonRecord:
    ts_text: str | None
    lines: list[str]  # the message's lines, then the traceback's
    hint: str  # the fields that may name the request or the task, joined


def field(record: Mapping[str, Any], name: str) -> Any:
    """`record[name]`, where a dotted name may also be nested (`error.stack_trace` as
    `{"error": {"stack_trace": ...}}`)."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _structlog_frames(stacks: list[Any]) -> list[str]:
    """structlog's `dict_tracebacks` (outermost exception first) as Python prints it
    (causes first)."""
    lines: list[str] = []
    for stack in reversed(stacks):
        if not isinstance(stack, Mapping):
            continue
        if lines:
            lines += [
                "",
                "The above exception was the direct cause of the following exception:",
                "",
            ]
        lines.append("Traceback (most recent call last):")
        for frame in stack.get("frames") or ():
            if isinstance(frame, Mapping):
                lines.append(
                    f'  File "{frame.get("filename", "?")}", line {frame.get("lineno", 0)}, in {frame.get("name", "?")}'
                )
        value = str(stack.get("exc_value") or "")
        lines.append(
            f"{stack.get('exc_type', 'Exception')}: {value}"
            if value
            else str(stack.get("exc_type", "Exception"))
        )
    return lines


def _traceback_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return _structlog_frames(value)
    return []


def _ecs_traceback(record: Mapping[str, Any], frames: list[str]) -> list[str]:
    """ecs-logging writes the raised exception's frames alone in `error.stack_trace`, its
    type and message in `error.type` and `error.message`: put them back together."""
    if not frames or frames[0].startswith("Traceback"):
        return frames
    kind = field(record, "error.type")
    message = field(record, "error.message")
    last = f"{kind}: {message}" if kind and message else str(kind or "Exception")
    return ["Traceback (most recent call last):", *frames, *last.splitlines()]


def read_record(record: Mapping[str, Any]) -> JsonRecord | None:
    """The record as lines, or None when it has neither a message nor a traceback (not a
    log record we know)."""
    message = next(
        (field(record, key) for key in _MESSAGE_KEYS if isinstance(field(record, key), str)), None
    )
    trace: list[str] = []
    for key in _TRACE_KEYS:
        trace = _traceback_lines(field(record, key))
        if trace:
            if key == "error.stack_trace":
                trace = _ecs_traceback(record, trace)
            break
    if message is None and not trace:
        return None
    stamp = next(
        (field(record, key) for key in _TIME_KEYS if field(record, key) not in (None, "")), None
    )
    ts_text = (
        str(stamp) if isinstance(stamp, (str, int, float)) and not isinstance(stamp, bool) else None
    )
    lines = (message or "").splitlines() or [""]
    if trace and not any(
        line.startswith("Traceback (most recent call last):") for line in lines[1:]
    ):
        lines += trace
    hint = " ".join(
        str(value) for key in _HINT_KEYS if isinstance(value := field(record, key), (str, int))
    )
    return JsonRecord(ts_text, lines, hint)
