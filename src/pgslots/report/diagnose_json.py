"""`diagnose --format json`: the whole `Diagnosis` in the JSON envelope (docs/json.md).

Keys are the dataclass fields (documented in `pgslots.diagnosis`); new fields may be added,
none renamed or removed within the envelope's schema version. Read it back with
`serde.from_jsonable(Diagnosis, data)`.
"""

from __future__ import annotations

from pgslots.diagnosis import Diagnosis
from pgslots.envelope import dumps, envelope
from pgslots.serde import to_jsonable


def render(diagnosis: Diagnosis) -> str:
    return dumps(envelope("diagnose", to_jsonable(diagnosis)))
