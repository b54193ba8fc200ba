"""The one JSON envelope every command writes.

Every `--format json` document (and every line of `watch --format json` and `watch --record`)
is an object that starts with the same header: `schema` (the envelope's version,
`pgslots/1`), `command`, `tool` (`{name, version}`), `generated_at` (UTC) and `findings` (a
list, empty for commands without findings), followed by the command's own keys at the top
level. The header never changes within a schema version; a command may add keys, never rename
or remove one. `pgslots/schema/pgslots-1.schema.json` is the JSON Schema of it, shipped in
the package (`docs/json.md` describes the keys per command).

Keys stay at the top level rather than under a `result` key so that a document written by
one command reads back as the input of another (`audit` -> `probe --topology`, `events` /
`probe` / `audit` -> `diagnose`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from pgslots import __version__
from pgslots.findings import Finding
from pgslots.serde import to_jsonable

SCHEMA = "pgslots/1"
COMMANDS = ("events", "audit", "probe", "watch", "lab", "demo", "diagnose", "codes")
SCHEMA_FILE = "pgslots-1.schema.json"


def envelope(
    command: str, payload: Mapping[str, Any], findings: Sequence[Finding] | None = None
) -> dict[str, Any]:
    """The header, then the command's own keys. `findings` come from the argument, else from
    the payload's own `findings` key (a serialised `Diagnosis` has one), else `[]`."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r} for the JSON envelope")
    body = dict(payload)
    body.pop("schema", None)
    listed = to_jsonable(list(findings)) if findings is not None else body.pop("findings", [])
    generated_at = body.pop("generated_at", None) or to_jsonable(dt.datetime.now(dt.timezone.utc))
    header = {
        "schema": SCHEMA,
        "command": command,
        "tool": {"name": "pgslots", "version": __version__},
        "generated_at": generated_at,
        "findings": listed,
    }
    return {**header, **body}


def dumps(document: Mapping[str, Any], indent: int | None = 2) -> str:
    """JSON text: indented for files, compact (one line) for JSON Lines."""
    separators = None if indent else (",", ":")
    return json.dumps(document, indent=indent, separators=separators, ensure_ascii=False)


def json_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the envelope."""
    text = resources.files("pgslots.schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
