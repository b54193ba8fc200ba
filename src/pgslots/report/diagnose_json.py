"""`diagnose --format json`: the whole `Diagnosis`, as `serde.to_jsonable` writes it.

Stable: keys are the dataclass fields (documented in `pgslots.diagnosis` and the README);
new fields may be added, none renamed or removed without a new `schema`. Read it back with
`serde.from_jsonable(Diagnosis, data)`.
"""

from __future__ import annotations

import json

from pgslots.diagnosis import Diagnosis
from pgslots.serde import to_jsonable

SCHEMA = "pgslots.diagnosis/1"


def render(diagnosis: Diagnosis) -> str:
    return json.dumps({"schema": SCHEMA, **to_jsonable(diagnosis)}, indent=2, ensure_ascii=False)
