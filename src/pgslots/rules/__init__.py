"""Rules: small functions from evidence to findings, one concern per module.

Each module defines its codes with `pgslots.findings.define` at import time and exposes
functions `(Incident | None, Topology | None, Snapshot | None) -> list[Finding]` or narrower
signatures. They never render and never read files.
"""
