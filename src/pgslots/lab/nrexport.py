"""The lab's APM output in the two shapes a New Relic user exports (domain reference §6.1).

* `events.jsonl`: one `TransactionError` event per line, as the agent reports it;
* `nerdgraph.json`: the result of `SELECT * FROM TransactionError SINCE ... UNTIL ...` in
  the NerdGraph NRQL envelope (`data.actor.account.nrql.results`, newest first, with
  `metadata.eventTypes` and `timeWindow` in epoch ms);
* `transactions.jsonl`: every request and task as a `Transaction` event (the denominator
  an error rate needs).

They are merged from the per-process files the app's recorder writes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NRQL = "SELECT * FROM TransactionError SINCE {begin} UNTIL {end} LIMIT MAX"


def read_events(directory: Path, kind: str) -> list[dict[str, Any]]:
    """All events of `kind` ("errors" or "transactions") from every process, oldest first."""
    events: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{kind}-*.jsonl")) if directory.is_dir() else ():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    try:
                        events.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line cut by a killed process
    events.sort(key=lambda e: (e.get("timestamp", 0), e.get("guid", "")))
    return events


def nerdgraph_envelope(
    events: Iterable[dict[str, Any]], begin_ms: int, end_ms: int
) -> dict[str, Any]:
    rows = [{k: v for k, v in e.items() if k != "type"} for e in events]
    rows.sort(key=lambda e: e.get("timestamp", 0), reverse=True)
    return {
        "data": {
            "actor": {
                "account": {
                    "nrql": {
                        "results": rows,
                        "metadata": {
                            "eventTypes": ["TransactionError"],
                            "facets": [],
                            "messages": [],
                            "timeWindow": {
                                "begin": begin_ms,
                                "end": end_ms,
                                "since": _nrql_time(begin_ms),
                                "until": _nrql_time(end_ms),
                            },
                        },
                        "nrql": NRQL.format(begin=_nrql_time(begin_ms), end=_nrql_time(end_ms)),
                    }
                }
            }
        }
    }


def _nrql_time(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).strftime(
        "'%Y-%m-%d %H:%M:%S +0000'"
    )


def write_exports(events_dir: Path, dest: Path) -> dict[str, Path]:
    dest.mkdir(parents=True, exist_ok=True)
    errors = read_events(events_dir, "errors")
    transactions = read_events(events_dir, "transactions")
    paths = {
        "events": dest / "events.jsonl",
        "nerdgraph": dest / "nerdgraph.json",
        "transactions": dest / "transactions.jsonl",
    }
    for key, items in (("events", errors), ("transactions", transactions)):
        with paths[key].open("w", encoding="utf-8") as out:
            for event in items:
                out.write(json.dumps(event) + "\n")
    stamps = [t["timestamp"] for t in transactions] or [e["timestamp"] for e in errors] or [0]
    begin = min(stamps) // 60000 * 60000
    end = (max(stamps) // 60000 + 1) * 60000
    paths["nerdgraph"].write_text(json.dumps(nerdgraph_envelope(errors, begin, end), indent=1))
    return paths
