"""Snapshots on disk: `watch --record FILE` writes JSON Lines, `read_records` reads them back.

One snapshot per line, as `serde.to_jsonable` writes it, flushed at once, so a watch that is
killed leaves a file that reads back whole except, at worst, its last line. The file is
appended to, so several watch runs can share one file.

`read_records` is what `events`/`diagnose` use to see connections over time; `load_snapshot`
reads the single snapshot of `probe --format json` (or the last line of a record file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pgslots.errors import InputError
from pgslots.live.model import Snapshot
from pgslots.serde import SerdeError, from_jsonable, to_jsonable


class Recorder:
    """Appends snapshots to a JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        try:
            needs_newline = (
                path.exists() and path.stat().st_size > 0 and not _ends_with_newline(path)
            )
            self._file: IO[str] = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", path=str(path)) from exc
        if needs_newline:  # a previous run was killed mid-line: start clean
            self._file.write("\n")

    def write(self, snapshot: Snapshot) -> None:
        self._file.write(json.dumps(to_jsonable(snapshot), separators=(",", ":")) + "\n")
        self._file.flush()
        self.written += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def snapshot_from_json(data: Any, where: str = "$") -> Snapshot:
    """A snapshot from a bare snapshot object or from `probe --format json` output
    (`{"snapshot": {...}, "findings": [...]}`)."""
    if isinstance(data, dict) and isinstance(data.get("snapshot"), dict):
        data, where = data["snapshot"], f"{where}.snapshot"
    return from_jsonable(Snapshot, data, where)


def iter_records(
    path: Path, on_skip: Callable[[int, str], None] | None = None
) -> Iterator[Snapshot]:
    """Snapshots in file order. A line that is not a snapshot is skipped and reported to
    `on_skip(line_number, reason)`; a file with no snapshot at all is an input error."""
    found = skipped = 0
    first_problem = ""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                snapshot = snapshot_from_json(json.loads(line), f"line {number}")
            except (ValueError, SerdeError) as exc:
                skipped += 1
                reason = str(exc).splitlines()[0][:200]
                first_problem = first_problem or f"line {number}: {reason}"
                if on_skip:
                    on_skip(number, reason)
                continue
            found += 1
            yield snapshot
    if not found and skipped:
        raise InputError(
            f"not a pgslots record file (JSON Lines of snapshots): {first_problem}", path=str(path)
        )


def read_records(
    path: Path | str, on_skip: Callable[[int, str], None] | None = None
) -> list[Snapshot]:
    """Every snapshot a `watch --record` file holds, oldest first."""
    return list(iter_records(Path(path), on_skip))


def load_snapshot(path: Path | str) -> Snapshot:
    """The snapshot of a `probe --format json` file, or the last one of a record file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    try:
        return snapshot_from_json(json.loads(text))
    except ValueError:
        pass  # not one JSON document: perhaps JSON Lines
    except SerdeError as exc:
        raise InputError(f"not a pgslots snapshot: {exc}", path=str(path)) from exc
    records = read_records(path)
    if not records:
        raise InputError("no snapshot in this file", path=str(path))
    return records[-1]
