"""FreeRADIUS's SQL module: another client of the application's PostgreSQL.

A FreeRADIUS server (image `freeradius/freeradius-server`, program `radiusd`/`freeradius`)
whose `mods-enabled/` has an `sql { driver = "rlm_sql_postgresql" ... }` module keeps its own
connection pool (FreeRADIUS 3 `pool { start, min, max, idle_timeout }`): `start` connections at
start-up, at least `min` kept open (idle ones beyond it close after `idle_timeout`), at most `max`.
The values are often references to the thread pool (`${thread[pool].max_servers}`), read from
`radiusd.conf`'s `thread pool { ... }`. The configuration folder is the one the Dockerfile copies
to `/etc/raddb` (or `/etc/freeradius`).
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import RepoFiles
from pgslots.evidence import Evidence, Resolution

RADIUS_IMAGES = re.compile(r"(^|/)freeradius(-server)?(:|$)", re.I)
RADIUS_PROGRAMS = frozenset({"radiusd", "freeradius"})
CONFIG_DESTINATIONS = ("/etc/raddb", "/etc/freeradius", "/opt/etc/raddb", "/etc/freeradius/3.0")
_POOL_VALUE = re.compile(r"^\s*(start|min|max)\s*=\s*(\S+)")
_THREAD_REF = re.compile(r"^\$\{thread\[pool\]\.(\w+)\}$")


@dataclasses.dataclass(frozen=True)
class RadiusPool:
    module: str  # the file of the sql module (mods-enabled/sql)
    minimum: int | None  # connections kept open when idle
    maximum: int | None  # at most
    evidence: tuple[Evidence, ...]


def config_folder(copies: dict[str, str], repo: RepoFiles) -> str | None:
    """The repository folder a Dockerfile copies to FreeRADIUS's configuration folder."""
    for dest in CONFIG_DESTINATIONS:
        source = copies.get(dest) or copies.get(dest + "/")
        if source and repo.is_dir(source):
            return source
    return None


def read_sql_pool(repo: RepoFiles, folder: str) -> RadiusPool | None:
    """The PostgreSQL pool of the enabled sql module in `folder`, or None when no enabled
    module talks to PostgreSQL."""
    modules = [p for p in repo.paths if p.startswith(f"{folder}/mods-enabled/")]
    for path in sorted(modules):
        lines = repo.lines(path)
        if not re.search(r"driver\s*=\s*\"?rlm_sql_postgresql", "\n".join(lines)):
            continue
        values = _pool_section(lines)
        threads = _thread_pool(repo, folder)
        evidence: list[Evidence] = []
        found: dict[str, int | None] = {}
        for key in ("min", "max"):
            if key not in values:
                found[key] = None
                continue
            raw, number = values[key]
            evidence.append(Evidence(path, number, repo.quote(path, number), Resolution.LITERAL))
            ref = _THREAD_REF.match(raw)
            if ref and ref[1] in threads:
                found[key] = threads[ref[1]][0]
                evidence.append(threads[ref[1]][1])
            else:
                found[key] = int(raw) if raw.isdigit() else None
        return RadiusPool(path, found["min"], found["max"], tuple(evidence))
    return None


def _pool_section(lines: list[str]) -> dict[str, tuple[str, int]]:
    """`start`, `min`, `max` of the module's `pool { ... }`: (value as written, line)."""
    values: dict[str, tuple[str, int]] = {}
    inside = False
    for number, line in enumerate(lines, start=1):
        stripped = line.split("#", 1)[0].strip()
        if re.match(r"^pool\s*\{", stripped):
            inside = True
        elif inside and stripped.startswith("}"):
            inside = False
        elif inside:
            found = _POOL_VALUE.match(stripped)
            if found:
                values[found[1]] = (found[2].strip('"'), number)
    return values


def _thread_pool(repo: RepoFiles, folder: str) -> dict[str, tuple[int, Evidence]]:
    """`thread pool { start_servers = 5 ... }` of radiusd.conf."""
    path = f"{folder}/radiusd.conf"
    out: dict[str, tuple[int, Evidence]] = {}
    inside = False
    for number, line in enumerate(repo.lines(path), start=1):
        stripped = line.split("#", 1)[0].strip()
        if re.match(r"^thread\s+pool\s*\{", stripped):
            inside = True
        elif inside and stripped.startswith("}"):
            break
        elif inside:
            found = re.match(r"^(\w+)\s*=\s*(\d+)$", stripped)
            if found:
                out[found[1]] = (
                    int(found[2]),
                    Evidence(path, number, stripped, Resolution.LITERAL),
                )
    return out
