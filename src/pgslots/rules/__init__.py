"""Rules: small functions from evidence to findings, one concern per module.

Each module defines its codes with `pgslots.findings.define` at import time and exposes
functions `(Incident | None, Topology | None, Snapshot | None) -> list[Finding]` or narrower
signatures. They never render and never read files.
"""

from __future__ import annotations

import importlib
import pkgutil

from pgslots.findings import REGISTRY, Check


def load_all_checks() -> dict[str, Check]:
    """Import every rule module so the registry is complete, and return it sorted by code."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(REGISTRY.items()))
