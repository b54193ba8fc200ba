"""What log collectors put around each line an application writes, and how to take it off.

An application's log rarely reaches the on-call engineer as the application wrote it: a
collector reads its stdout line by line and prefixes every line (traceback lines too) with
its own stream name and the time it read the line, or wraps it in a JSON envelope. Each
layout below is the one its tool documents:

* `docker compose logs`: `web-1  | line` (the service padded to the widest), with `-t`
  `web-1  | 2026-11-25T15:12:29.123456789Z line`;
* `docker logs -t` and `kubectl logs --timestamps`: `2026-11-25T15:12:29.123456789Z line`
  (RFC 3339 with nanoseconds); `kubectl logs --prefix`: `[pod/web-7d4b9-x2x9z/django] line`;
* journald: `journalctl` short `Nov 25 15:12:29 web01 gunicorn[15275]: line` (no year),
  short-iso `2026-11-25T15:12:29+0000 web01 gunicorn[15275]: line`, and `-o json`, one
  object per line with `MESSAGE` and `__REALTIME_TIMESTAMP` (microseconds since the epoch);
* Heroku's `heroku logs`: `2026-11-25T15:12:29.123456+00:00 app[web.1]: line`;
* docker's json-file driver's own files: `{"log": "line\\n", "stream": "stderr", "time": ...}`;
* Google Cloud Logging exports: `LogEntry` objects with `timestamp` and either
  `textPayload` (a line of text) or `jsonPayload` (the application's own JSON record), one
  per line (a sink) or as the JSON array `gcloud logging read --format=json` prints.

Which layout a file has is decided once, from its first lines (most of them must carry
it: a collector prefixes every line, an application only its record headers), so a time
at the start of a line is not mistaken for a collector's when the application wrote it.
The line's stream (service, pod, process) is kept: records of several processes
interleave in a collected log and must not be glued together.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

RFC3339 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})"
SYSLOG_TIME = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}"
_IDENT = r"[^\s\[\]:]+(?:\[\d+\])?"  # syslog identifier with its optional [pid]

TimeKind = str  # "iso" (RFC 3339 / ISO 8601), "syslog" (no year), "epoch_us"


@dataclasses.dataclass(frozen=True, slots=True)
class CollectedLine:
    """One line as the application wrote it, with what the collector said about it."""

    text: str
    stream: str = ""  # which process wrote it; "" when the collector does not say
    ts_text: str | None = None  # the collector's time of the line
    ts_kind: TimeKind = "iso"
    payload: dict[str, Any] | None = (
        None  # a JSON record the collector already parsed (jsonPayload)
    )
    envelope: str = ""  # the collector whose JSON envelope held the line ("" for none)


@dataclasses.dataclass(frozen=True)
class LinePrefix:
    """A collector's text prefix: `pattern` gives `text` and optionally `stream`, `ts`."""

    name: str
    pattern: re.Pattern[str]
    ts_kind: TimeKind = "iso"

    def fields(self, line: str) -> tuple[str, str, str | None] | None:
        """(text, stream, time) of a line that carries the prefix, else None: the reader's
        per-line fast path (every pattern names all three groups)."""
        match = self.pattern.match(line)
        return match.group("text", "stream", "ts") if match is not None else None  # type: ignore[return-value]

    def split(self, line: str) -> CollectedLine | None:
        found = self.fields(line)
        if found is None:
            return None
        text, stream, ts = found
        return CollectedLine(text, stream or "", ts, self.ts_kind)


# Most specific first: the first that carries most of a file's lines is the file's.
PREFIXES = (
    LinePrefix(
        "heroku",
        re.compile(rf"^(?P<ts>{RFC3339}) (?P<stream>(?:app|heroku)\[[\w.-]+\]): ?(?P<text>.*)$"),
    ),
    LinePrefix(
        "journald short-iso",
        re.compile(rf"^(?P<ts>{RFC3339}) \S+ (?P<stream>{_IDENT}): ?(?P<text>.*)$"),
    ),
    LinePrefix(
        "journald short",
        re.compile(rf"^(?P<ts>{SYSLOG_TIME}) \S+ (?P<stream>{_IDENT}): ?(?P<text>.*)$"),
        "syslog",
    ),
    LinePrefix(
        "kubectl logs --prefix",
        re.compile(rf"^\[(?P<stream>pod/[^\]\s]+)\] (?:(?P<ts>{RFC3339}) )?(?P<text>.*)$"),
    ),
    LinePrefix(
        "docker compose logs",
        re.compile(rf"^(?P<stream>[A-Za-z0-9][\w.-]*) +\| ?(?:(?P<ts>{RFC3339}) )?(?P<text>.*)$"),
    ),
    LinePrefix(
        "docker logs -t / kubectl logs --timestamps",
        re.compile(rf"^(?P<stream>)(?P<ts>{RFC3339}) (?P<text>.*)$"),
    ),
)
# What an application's line starts with (an indented traceback line, a traceback, a JSON
# record, a bracket, a time, a level): the evidence that a bare leading time is a collector's.
_APP_LINE = re.compile(r"^(?:\s|Traceback|\{|\[|\d{4}-\d{2}-\d{2}|[A-Z]{4,8}\b)")
_MAJORITY = 0.8  # share of a file's first lines that must carry a collector's prefix
_SAMPLE_LINES = 200


def detect_prefix(head: str) -> LinePrefix | None:
    """The collector layout that most of the head's lines carry, or None (lines as written).
    JSON lines are never prefixed: their envelope, if any, is read per line."""
    lines = [line for line in head.splitlines()[:_SAMPLE_LINES] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the head may end in the middle of a line
    if not lines or sum(1 for line in lines if line.lstrip().startswith("{")) * 2 > len(lines):
        return None
    for prefix in PREFIXES:
        carried = [found for line in lines if (found := prefix.fields(line)) is not None]
        if len(carried) < _MAJORITY * len(lines):
            continue
        if prefix is PREFIXES[-1] and not any(_APP_LINE.match(text) for text, _s, _t in carried):
            continue  # a bare time before lines that do not look like an application's own: its own time
        return prefix
    return None


def _journald(entry: dict[str, Any]) -> CollectedLine | None:
    """`journalctl -o json`: MESSAGE is a line of the unit's output (a list of bytes when it
    was not UTF-8)."""
    message = entry.get("MESSAGE")
    if isinstance(message, list):
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode(
            "utf-8", "replace"
        )
    if not isinstance(message, str):
        return None
    ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_SYSTEMD_UNIT") or entry.get("_COMM") or ""
    pid = entry.get("_PID")
    stream = f"{ident}[{pid}]" if pid else str(ident)
    stamp = entry.get("__REALTIME_TIMESTAMP")
    return CollectedLine(
        message.rstrip("\n"),
        stream,
        str(stamp) if stamp else None,
        "epoch_us",
        envelope="journald (-o json)",
    )


def _cloud_logging(entry: dict[str, Any]) -> CollectedLine | None:
    """A Cloud Logging `LogEntry`: `textPayload` is a line of text, `jsonPayload` the
    application's JSON record; the stream is the resource the entry came from."""
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        resource = {}
    labels = resource.get("labels")
    if not isinstance(labels, dict):
        labels = {}
    where = [
        str(labels[key])
        for key in ("pod_name", "container_name", "service_name", "revision_name")
        if key in labels
    ]
    stream = "/".join(where) or str(entry.get("logName", ""))
    stamp = entry.get("timestamp") if isinstance(entry.get("timestamp"), str) else None
    text = entry.get("textPayload")
    if isinstance(text, str):
        return CollectedLine(text.rstrip("\n"), stream, stamp, envelope="Cloud Logging")
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        return CollectedLine("", stream, stamp, payload=payload, envelope="Cloud Logging")
    return None


def _docker_json_file(entry: dict[str, Any]) -> CollectedLine | None:
    """docker's json-file driver (`/var/lib/docker/containers/<id>/<id>-json.log`): `log` is
    a line with its newline, `stream` stdout or stderr, `time` RFC 3339 with nanoseconds."""
    text, stamp = entry.get("log"), entry.get("time")
    if not isinstance(text, str) or not isinstance(stamp, str):
        return None
    return CollectedLine(text.rstrip("\n"), "", stamp, envelope="docker json-file")


def envelope(entry: dict[str, Any]) -> CollectedLine | None:
    """The line inside a collector's JSON envelope (journald, Cloud Logging), or None when
    the object is not one (then it is the application's own record)."""
    if "MESSAGE" in entry and "__REALTIME_TIMESTAMP" in entry:
        return _journald(entry)
    if ("textPayload" in entry or "jsonPayload" in entry) and "timestamp" in entry:
        return _cloud_logging(entry)
    if "log" in entry and "time" in entry and entry.get("stream") in ("stdout", "stderr"):
        return _docker_json_file(entry)
    return None


def _parsed(collected: CollectedLine) -> CollectedLine:
    """The line with its JSON record parsed, when the application writes JSON lines."""
    text = collected.text
    if collected.payload is not None or not text.startswith("{") or not text.rstrip().endswith("}"):
        return collected
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return collected
    return dataclasses.replace(collected, payload=record) if isinstance(record, dict) else collected


def collect(line: str, prefix: LinePrefix | None) -> CollectedLine:
    """The application's line inside `line`: its collector prefix or JSON envelope taken
    off (lines that carry neither pass as they are), and its JSON record parsed when the
    application writes JSON."""
    if prefix is not None:
        return _parsed(prefix.split(line) or CollectedLine(line))
    collected = _parsed(CollectedLine(line))
    if collected.payload is not None:
        inside = envelope(collected.payload)
        if inside is not None:
            return _parsed(inside)
    return collected
