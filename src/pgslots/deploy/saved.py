"""An audit saved as JSON (`pgslots audit --format json`), read back as a `Topology`: what
`probe --topology` compares the live server with, and what `diagnose --repo audit.json` joins.
"""

from __future__ import annotations

import json
from pathlib import Path

from pgslots.deploy.model import Topology
from pgslots.errors import InputError
from pgslots.serde import SerdeError, from_jsonable


def load_topology(path: Path) -> Topology:
    """The `topology` of an audit JSON (or a bare topology object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", path=str(path)) from exc
    if isinstance(data, dict) and isinstance(data.get("topology"), dict):
        data = data["topology"]
    try:
        return from_jsonable(Topology, data, "topology")
    except (SerdeError, TypeError, ValueError) as exc:
        raise InputError(
            f"not an audit topology (pgslots audit --format json): {exc}", path=str(path)
        ) from exc
