"""What PostgreSQL server logs tell beyond the rejections: client backends over time,
rejections by role, database and client, and the server version and reserved-slot setup
inferred from the wording.

Interface (the pipeline calls it once per run): the PostgreSQL log readers leave their
connection trace in `ReadStats.extra["connection_trace"]`; `summarise` turns the traces of
all server-log inputs, and the events they yielded, into one `ServerLogSummary`, or None
when no input was a server log.

Not written yet: the server-log readers will fill this in.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgslots.events.model import ErrorEvent, ServerLogSummary
from pgslots.events.sources import ReadStats


def summarise(stats: Sequence[ReadStats], events: Sequence[ErrorEvent]) -> ServerLogSummary | None:
    return None
