"""New Relic: NRQL results as NerdGraph returns them, the legacy Insights query API's
envelope, the UI's JSON and CSV exports, and plain JSON arrays or JSON Lines of
`TransactionError` events (domain reference §6.1).

Raw events (`SELECT * FROM TransactionError`) become one `ErrorEvent` each, at `timestamp`
(epoch ms; New Relic sets it to the transaction's start, not the moment of the error).
Aggregates become pre-counted events: a `TIMESERIES` row at its bucket's start, a `FACET`
row with the faceted attributes set (a multi-facet row's `facet` is a list, matched to
`metadata.facets` by position), a `FACET` row without time at the query window's start,
and `otherResult` (the facets beyond `LIMIT`) with the faceted attributes set to "Other".

Attribute names are matched loosely (case, dots, spaces and underscores ignored), so
`error.message`, `errorMessage` and a CSV column "Error message" all fill `message`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent, InputGrid, SourceRef
from pgslots.events.sources import (
    GRID,
    ReadOptions,
    ReadStats,
    json_records,
    open_text,
    register,
)
from pgslots.events.times import from_epoch, parse_time

UI_TRUNCATION = 255
"""New Relic's charts and table/CSV exports may show only the first 255 characters of an
attribute value (domain reference §6.1)."""

CSV_FIELD_LIMIT = 16 * 1024 * 1024

_FIELDS: dict[str, tuple[str, ...]] = {
    "ts": ("timestamp", "time", "ts"),
    "message": ("errormessage", "message"),
    "error_class": ("errorclass", "errortype"),
    "transaction": ("transactionname", "transaction", "name"),
    "host": ("host", "hostname", "servername"),
    "app": ("appname", "app", "application", "applicationname"),
    "db": ("db", "database", "dbname", "databasename"),
    "user": ("user", "username", "role"),
    "client": ("client", "clientaddr", "clientaddress"),
    "count": ("count",),
    "begin": ("begintimeseconds", "begintime", "begin"),
    "end": ("endtimeseconds", "endtime", "end"),
    "facet": ("facet",),
}
_EVENT_FIELDS = ("message", "error_class", "transaction", "host", "app", "db", "user", "client")
_FIELD_OF_ATTRIBUTE = {alias: field for field, aliases in _FIELDS.items() for alias in aliases}
_MARKERS = re.compile(
    r'"(?:error\.message|error\.class|errorMessage|transactionName|beginTimeSeconds|eventTypes|nrql)"'
    r'|"facet"\s*:|"TransactionError"'
)
_NOT_OURS = re.compile(r'"(?:error_severity|backend_type|event_id|exception|entries)"\s*:')


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _lookup(row: Mapping[str, Any], field: str) -> Any:
    for alias in _FIELDS[field]:
        if alias in row:
            return row[alias]
    return None


@dataclasses.dataclass(frozen=True)
class _Query:
    """What the response says about the query: its facets and time window."""

    facets: tuple[str, ...] = ()  # normalised attribute names, in FACET order
    begin: dt.datetime | None = None
    end: dt.datetime | None = None


class _RowReader:
    """Turns one result row (raw event or aggregate) into an event, or a reason to skip it."""

    def __init__(
        self, path: Path, fmt: str, options: ReadOptions, stats: ReadStats, query: _Query
    ) -> None:
        self.path = str(path)
        self.format = fmt
        self.options = options
        self.stats = stats
        self.query = query
        self.truncated = 0

    def _time(self, value: Any) -> dt.datetime | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            try:
                return from_epoch(value)
            except (OverflowError, OSError, ValueError):
                return None
        if isinstance(value, str):
            parsed = parse_time(value, self.options.tz)
            if parsed is None:
                return None
            if parsed[1]:
                self.stats.naive_time()
            return parsed[0]
        return None

    def event(self, raw: Any, number: int, *, other: bool = False) -> ErrorEvent | str | None:
        """The row's event; a string says why the row is skipped; None: a bucket with no events."""
        if not isinstance(raw, Mapping):
            return "not an object"
        row = {_norm(str(k)): v for k, v in raw.items()}
        fields: dict[str, str | None] = {}
        for name in _EVENT_FIELDS:
            value = _lookup(row, name)
            fields[name] = None if value is None or value == "" else str(value)
        self._apply_facets(row, fields, other)
        count_value = _lookup(row, "count")
        begin = _lookup(row, "begin")
        aggregate = count_value is not None or begin is not None or "facet" in row or other
        if aggregate:
            count = _count(count_value)
            if count is None:
                return "aggregate row without a numeric count"
            if count == 0:
                return None
            ts = self._time(begin) if begin is not None else self.query.begin
            if ts is None:
                return "aggregate row without a time, and no metadata.timeWindow to place it"
        else:
            count = 1
            ts = self._time(_lookup(row, "ts"))
            if ts is None:
                return "no timestamp"
            if fields["message"] is None and fields["error_class"] is None:
                return "neither error.message nor error.class"
        message = fields.pop("message") or ""
        if len(message) == UI_TRUNCATION:
            self.truncated += count
        return ErrorEvent(
            ts=ts,
            message=message,
            source=SourceRef(self.format, self.path, number),
            count=count,
            **fields,  # type: ignore[arg-type]
        )

    def _apply_facets(
        self, row: Mapping[str, Any], fields: dict[str, str | None], other: bool
    ) -> None:
        facet = row.get("facet")
        values = facet if isinstance(facet, list) else [facet] if facet is not None else []
        names = self.query.facets or ()
        for index, name in enumerate(names):
            field = _FIELD_OF_ATTRIBUTE.get(name)
            if field not in _EVENT_FIELDS:
                continue
            if other:
                fields[field] = "Other"
            elif index < len(values) and values[index] is not None:
                fields[field] = str(values[index])

    def read_rows(self, rows: list[Any], *, other: bool = False) -> Iterator[ErrorEvent]:
        for number, raw in enumerate(rows, 1):
            self.stats.records += 1
            result = self.event(raw, number, other=other)
            if isinstance(result, str):
                self.stats.skip(number, result, unit="row")
            elif result is not None:
                yield result

    def finish(self) -> None:
        if self.truncated:
            self.stats.notes.append(
                f"{self.truncated} messages are exactly {UI_TRUNCATION} characters long: New Relic's UI cuts "
                f"attribute values at {UI_TRUNCATION} in tables and CSV exports. Classification reads the prefix, "
                "which keeps the first wording; a second attempt's wording past the cut is lost, so a "
                "'combination' can be undercounted. Export JSON (NerdGraph) for exact message families."
            )


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if value >= 0 else None
    if isinstance(value, str):
        try:
            return _count(float(value.replace(",", "")))
        except ValueError:
            return None
    return None


def _ms(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return from_epoch(value)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _query_of(metadata: Any) -> _Query:
    if not isinstance(metadata, Mapping):
        return _Query()
    facets = metadata.get("facets") or metadata.get("facet") or ()
    if isinstance(facets, str):
        facets = (facets,)
    window = metadata.get("timeWindow")
    if not isinstance(window, Mapping):
        window = {}
    begin = _ms(window.get("begin")) or _ms(metadata.get("beginTimeMillis"))
    end = _ms(window.get("end")) or _ms(metadata.get("endTimeMillis"))
    names = tuple(_norm(str(f)) for f in facets) if isinstance(facets, (list, tuple)) else ()
    return _Query(facets=names, begin=begin, end=end)


def _find_nrql(doc: Any, depth: int = 0) -> Mapping[str, Any] | None:
    """The object holding `results` (NerdGraph: data.actor.account.nrql, data.actor.nrql,
    or the nrql object alone as the UI's JSON export gives it)."""
    if not isinstance(doc, Mapping) or depth > 6:
        return None
    if (
        isinstance(doc.get("results"), list)
        or isinstance(doc.get("facets"), list)
        or isinstance(doc.get("timeSeries"), list)
    ):
        return doc
    for value in doc.values():
        found = _find_nrql(value, depth + 1)
        if found is not None:
            return found
    return None


def _insights_rows(nrql: Mapping[str, Any]) -> tuple[list[Any], _Query] | None:
    """The legacy Insights query API envelope, flattened into NerdGraph-style rows."""
    query = _query_of(nrql.get("metadata"))
    results = nrql.get("results")
    if (
        isinstance(results, list)
        and results
        and isinstance(results[0], Mapping)
        and "events" in results[0]
    ):
        events = [e for r in results if isinstance(r, Mapping) for e in (r.get("events") or [])]
        return events, query
    facets, series = nrql.get("facets"), nrql.get("timeSeries")
    if isinstance(series, list) and not isinstance(facets, list):
        return [_insights_bucket(b) for b in series], query
    if not isinstance(facets, list):
        return None
    rows: list[Any] = []
    for facet in facets:
        if not isinstance(facet, Mapping):
            rows.append(facet)
            continue
        name = facet.get("name")
        if isinstance(facet.get("timeSeries"), list):
            rows += [{**_insights_bucket(b), "facet": name} for b in facet["timeSeries"]]
        else:
            rows.append({**_first_result(facet.get("results")), "facet": name})
    return rows, query


def _first_result(results: Any) -> dict[str, Any]:
    if isinstance(results, list) and results and isinstance(results[0], Mapping):
        return dict(results[0])
    return {}


def _insights_bucket(bucket: Any) -> Any:
    if not isinstance(bucket, Mapping):
        return bucket
    row = _first_result(bucket.get("results"))
    row.update({k: bucket[k] for k in ("beginTimeSeconds", "endTimeSeconds") if k in bucket})
    return row


def _grid_of(rows: list[Any], query: _Query) -> InputGrid | None:
    for row in rows:
        if isinstance(row, Mapping) and "beginTimeSeconds" in row and "endTimeSeconds" in row:
            begin, end = row["beginTimeSeconds"], row["endTimeSeconds"]
            if isinstance(begin, (int, float)) and isinstance(end, (int, float)) and end > begin:
                start = query.begin or from_epoch(
                    min(
                        r["beginTimeSeconds"]
                        for r in rows
                        if isinstance(r, Mapping)
                        and isinstance(r.get("beginTimeSeconds"), (int, float))
                    )
                )
                return InputGrid(begin=start, bucket_seconds=int(end - begin))
    return None


def _nerdgraph_error(doc: Mapping[str, Any]) -> str | None:
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        return str(first.get("message") if isinstance(first, Mapping) else first)
    return None


class NewRelicJson:
    name = "newrelic"
    description = (
        "New Relic NRQL results (NerdGraph, legacy Insights API, UI JSON export), "
        "or a JSON array / JSON Lines of TransactionError events"
    )
    priority = 20

    def sniff(self, head: str, path: Path) -> bool:
        start = head.lstrip("\ufeff \t\r\n")[:1]
        if start not in ("{", "["):
            return False
        first_line = head.lstrip("\ufeff \t\r\n").split("\n", 1)[0]
        if _NOT_OURS.search(first_line):
            return False
        return bool(_MARKERS.search(head))

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        doc, lines = json_records(path, options, stats)
        if lines is not None:
            yield from self._read_lines(lines, path, options, stats)
            return
        rows, query, other = self._rows(doc, path)
        reader = _RowReader(path, self.name, options, stats, query)
        grid = _grid_of(rows, query)
        if grid is not None:
            stats.extra[GRID] = grid
        yield from reader.read_rows(rows)
        if other:
            yield from reader.read_rows(other, other=True)
        reader.finish()

    def _rows(self, doc: Any, path: Path) -> tuple[list[Any], _Query, list[Any]]:
        if isinstance(doc, list):
            return doc, _Query(), []
        if not isinstance(doc, Mapping):
            raise InputError("expected a JSON object or array of New Relic results", path=str(path))
        nrql = _find_nrql(doc)
        if nrql is None:
            error = _nerdgraph_error(doc)
            if error:
                raise InputError(
                    f"the NerdGraph response holds no results, only an error: {error}",
                    path=str(path),
                )
            if _lookup({_norm(k): v for k, v in doc.items()}, "message") is not None:
                return [doc], _Query(), []  # a single event object
            raise InputError(
                "no 'results' in this JSON (expected a NerdGraph NRQL response)", path=str(path)
            )
        insights = _insights_rows(nrql)
        if insights is not None:
            return insights[0], insights[1], []
        query = _query_of(nrql.get("metadata"))
        other = nrql.get("otherResult")
        other_rows = (
            other if isinstance(other, list) else [other] if isinstance(other, Mapping) else []
        )
        return list(nrql["results"]), query, other_rows if query.facets else []

    def _read_lines(
        self, lines: Iterator[tuple[int, Any]], path: Path, options: ReadOptions, stats: ReadStats
    ) -> Iterator[ErrorEvent]:
        reader = _RowReader(path, self.name, options, stats, _Query())
        for number, raw in lines:
            result = reader.event(raw, number)
            if isinstance(result, str):
                stats.skip(number, result)
            elif result is not None:
                yield result
        reader.finish()


class NewRelicCsv:
    name = "newrelic-csv"
    description = (
        "New Relic UI CSV export of a TransactionError query (raw events, FACET or TIMESERIES)"
    )
    priority = 25

    def sniff(self, head: str, path: Path) -> bool:
        header = _norm_header(head.lstrip("\ufeff").split("\n", 1)[0])
        if len(header) < 2:
            return False
        names = set(header)
        return (
            bool(names & {"errormessage", "errorclass", "transactionname"})
            or {
                "begintimeseconds",
                "count",
            }
            <= names
        )

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        csv.field_size_limit(CSV_FIELD_LIMIT)
        with open_text(path) as handle:
            rows = csv.reader(handle)
            try:
                header = [_norm(h) for h in next(rows)]
            except StopIteration:
                raise InputError("empty CSV", path=str(path)) from None
            except csv.Error as exc:
                raise InputError(f"unreadable CSV header: {exc}", path=str(path), line=1) from None
            if header and header[0].startswith("\ufeff"):
                header[0] = header[0][1:]
            reader = _RowReader(path, self.name, options, stats, _Query(facets=()))
            consumed = 0
            row_number = 1  # the header is row 1, as a spreadsheet numbers it
            while True:
                try:
                    values = next(rows)
                except StopIteration:
                    break
                except csv.Error as exc:
                    row_number += 1
                    stats.records += 1
                    stats.skip(row_number, str(exc), unit="row")
                    continue
                row_number += 1
                if options.progress is not None:
                    consumed += sum(len(v) + 1 for v in values)
                    if consumed >= 1 << 20:
                        options.progress(consumed)
                        consumed = 0
                if not any(v.strip() for v in values):
                    continue
                stats.records += 1
                if len(values) != len(header):
                    stats.skip(
                        row_number,
                        f"{len(values)} fields, the header has {len(header)}",
                        unit="row",
                    )
                    continue
                result = reader.event(dict(zip(header, values, strict=True)), row_number)
                if isinstance(result, str):
                    stats.skip(row_number, result, unit="row")
                elif result is not None:
                    yield result
            if options.progress is not None and consumed:
                options.progress(consumed)
            reader.finish()


def _norm_header(line: str) -> list[str]:
    try:
        return [_norm(h) for h in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return []


register(NewRelicJson())
register(NewRelicCsv())
