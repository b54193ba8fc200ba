"""Readers of error evidence, one module per input format.

A reader turns one file into `ErrorEvent`s, streaming, and never classifies or aggregates
across files (the pipeline does that). Each module defines a `Source` and registers it with
`register`; every module of this package is imported by `all_sources()`, so adding a format
means adding a module.

Detection is by content, not by file name: each source's `sniff` looks at the first
64 KiB (decompressed) and says whether it recognises it. Sources are asked in order of
`priority` (lower first), so the precise JSON shapes are tried before the looser text ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import importlib
import io
import json
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent, SourceRef

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
MAX_SKIP_EXAMPLES = 5
PROGRESS_STEP = 1 << 20  # report progress about once per MiB read

# Keys of `ReadStats.extra` that the pipeline reads.
NAIVE_TIMES = "naive_times"  # int: events whose time had no zone and was read in `ReadOptions.tz`
GRID = "grid"  # model.InputGrid: the input came pre-bucketed (New Relic TIMESERIES)
CONNECTION_TRACE = "connection_trace"  # server-log readers' trace, for `serverlog.summarise`


@dataclasses.dataclass
class ReadOptions:
    """What the user told us about the inputs."""

    log_line_prefix: str | None = None  # PostgreSQL stderr logs; None = recognise common ones
    tz: dt.tzinfo = dt.timezone.utc  # for timestamps that carry no zone
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    # For a progress bar: called with the number of bytes consumed since the previous call
    # (decompressed bytes for `.gz`; `input_size` gives the matching total). None: no bar.
    progress: Callable[[int], None] | None = None
    # Readers that pre-count events (server logs) may add them up per this many seconds
    # (the pipeline sets it from the timeline: 60 unless a bucket or window edge is off the minute).
    group_seconds: int = 1
    # Processes reading one large plain PostgreSQL stderr log (None: one per CPU, at most 3,
    # for files of 64 MiB or more; 1: one pass).
    jobs: int | None = None


@dataclasses.dataclass
class ReadStats:
    """What reading one file gave besides events: for the report's honesty section."""

    path: str
    format: str
    records: int = 0  # lines or rows looked at
    skipped: int = 0  # malformed lines or rows, counted and passed over
    skipped_examples: list[SourceRef] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(
        default_factory=dict
    )  # per-format side results (server-log connection trace)

    def naive_time(self, n: int = 1) -> None:
        """Count times read without a zone (the report says which zone they were read in)."""
        self.extra[NAIVE_TIMES] = self.extra.get(NAIVE_TIMES, 0) + n

    def skip(self, line: int | None, reason: str = "", unit: str = "line") -> None:
        """Count a malformed record; keep where it was (and why) for the first few.
        `unit` says what `line` numbers: "line" for text, "row" for JSON and CSV records."""
        self.skipped += 1
        if len(self.skipped_examples) < MAX_SKIP_EXAMPLES:
            self.skipped_examples.append(SourceRef(self.format, self.path, line))
            if reason:
                self.notes.append(f"{unit} {line}: {reason}" if line is not None else reason)


class Source(Protocol):
    name: str  # the --input-format value, e.g. "newrelic", "pg-stderr"
    description: str  # one line for --help and error messages
    priority: int  # detection order, lower first

    def sniff(self, head: str, path: Path) -> bool:
        """True when the first bytes of the file look like this format."""

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        """Yield the file's events; count malformed records in `stats` instead of failing,
        but raise `InputError` when the file as a whole is not of this format."""


_REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    if source.name in _REGISTRY:
        raise ValueError(f"input format {source.name!r} registered twice")
    _REGISTRY[source.name] = source
    return source


def all_sources() -> list[Source]:
    """Every registered source, in detection order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(_REGISTRY.values(), key=lambda s: (s.priority, s.name))


def source_named(name: str) -> Source:
    sources = {s.name: s for s in all_sources()}
    if name not in sources:
        raise InputError(f"unknown input format {name!r}; supported: {', '.join(sorted(sources))}")
    return sources[name]


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading, transparently decompressing `.gz` (detected by magic bytes)."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.open(raw, "rb")  # type: ignore[return-value]
    return raw


def open_text(path: Path) -> IO[str]:
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="")


def input_size(path: Path) -> int:
    """The number of bytes a reader will consume: the file's size, or for `.gz` the
    uncompressed size from the gzip trailer (modulo 4 GiB, as the format stores it; good
    enough for a progress bar)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if handle.read(2) != GZIP_MAGIC or size < 18:
                return size
            handle.seek(-4, 2)
            return int.from_bytes(handle.read(4), "little") or size
    except OSError:
        return 0


def numbered_lines(path: Path, options: ReadOptions) -> Iterator[tuple[int, str]]:
    """The file's lines, numbered from 1, decoded leniently (`.gz` too), reporting progress
    to `options.progress` about once per MiB. Line ends are kept off."""
    progress = options.progress
    pending = 0
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, 1):
                if progress is not None:
                    pending += len(line)
                    if pending >= PROGRESS_STEP:
                        progress(pending)
                        pending = 0
                yield number, line.rstrip("\r\n")
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None
    if progress is not None and pending:
        progress(pending)


def read_text(path: Path, options: ReadOptions) -> str:
    """The whole file as text (for JSON documents), with one progress report."""
    with open_text(path) as handle:
        try:
            text = handle.read()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None
    if options.progress is not None:
        options.progress(len(text))
    return text


def looks_like_json_lines(head: str) -> bool:
    """JSON Lines, not one JSON document: the first non-blank line is a whole object by
    itself, and more lines follow (a pretty-printed document's first line is a lone `{`)."""
    lines = [line.strip() for line in head.splitlines() if line.strip()][:2]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def load_json_document(path: Path, options: ReadOptions) -> Any:
    """The file as one JSON document, or an `InputError` saying where it breaks."""
    text = read_text(path, options)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if (
            exc.msg == "Extra data"
            and text[: exc.pos].rstrip().endswith("}")
            and "\n" in text[: exc.pos + 1]
        ):
            return _JSON_LINES  # one object per line, the first longer than the sniffed head
        what = "truncated JSON" if exc.pos >= len(text.rstrip()) else "invalid JSON"
        raise InputError(
            f"{what}: {exc.msg} (column {exc.colno})", path=str(path), line=exc.lineno
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path=str(path)) from None


_JSON_LINES = object()


def json_records(
    path: Path, options: ReadOptions, stats: ReadStats
) -> tuple[Any, Iterator[tuple[int, Any]] | None]:
    """`(document, None)` for a JSON document, `(None, records)` for JSON Lines, where
    records are `(line number, value)` and unparsable lines are counted as skipped."""
    if not looks_like_json_lines(read_head(path)):
        document = load_json_document(path, options)
        if document is not _JSON_LINES:
            return document, None
    return None, json_lines(path, options, stats)


def json_lines(path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line; lines that are not JSON are
    counted as skipped."""
    for number, line in numbered_lines(path, options):
        if not line.strip():
            continue
        stats.records += 1
        try:
            yield number, json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            stats.skip(number, "not JSON")


def read_head(path: Path) -> str:
    """The first 64 KiB, decoded leniently, for sniffing."""
    with open_binary(path) as handle:
        try:
            data = handle.read(SNIFF_BYTES)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot read: {exc}", path=str(path)) from None
    return data.decode("utf-8", errors="replace")


def readable_head(path: Path) -> str:
    """The head of a file we can read as text, or an `InputError` saying why not (missing,
    empty, binary). Checked even when the format is forced."""
    head = read_head(path)
    if not head.strip():
        raise InputError("file is empty", path=str(path))
    if "\x00" in head[:4096]:
        raise InputError("looks like a binary file, not an export or a log", path=str(path))
    return head


def detect(path: Path) -> Source:
    """The first source that recognises the file, or an error naming the supported formats."""
    head = readable_head(path)
    sources = all_sources()
    for source in sources:
        if source.sniff(head, path):
            return source
    names = ", ".join(s.name for s in sources)
    raise InputError(
        f"format not recognised; supported: {names} (force one with --input-format)", path=str(path)
    )
