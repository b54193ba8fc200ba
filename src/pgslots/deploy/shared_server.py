"""Which server the budget is for when the settings name two: a PostgreSQL on each host and a
remote one.

`default` without a HOST is the local socket: a server on the machine itself. When another
alias names a remote HOST and the project's database router sends every write there (reads
going to the local copy), each host has its own local server while the remote one is shared
by every host and function: the budget is the remote server's. A process whose settings reach
only the local server (a set-up script run with the router switched off) is then not one of
its clients.
"""

from __future__ import annotations

import ast
import dataclasses

from pgslots.deploy.model import AliasFact
from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.django_settings import SettingsRead
from pgslots.evidence import Evidence, Resolution


@dataclasses.dataclass(frozen=True)
class SharedServer:
    alias: str  # the alias of the main settings that names it ("principal")
    host: str  # its HOST as read ("$RDS_HOST")
    evidence: tuple[Evidence, ...]

    def note(self, local: str) -> str:
        cited = ", ".join(e.location() for e in self.evidence)
        return (
            f"the budget is for the server of `{self.alias}` ({self.host}): `{local}` has no HOST (a "
            f"PostgreSQL on each host) and the database router writes to `{self.alias}` ({cited})"
        )


def _postgres(alias: AliasFact) -> bool:
    return "postgres" in (alias.engine or "") or "postgis" in (alias.engine or "")


def shared_server(
    read: SettingsRead | None, aliases: list[AliasFact], repo: RepoFiles
) -> SharedServer | None:
    """The remote server of a local-copy-per-host deployment, or None for any other shape."""
    default = next((a for a in aliases if a.name == "default"), None)
    if read is None or default is None or default.host or not _postgres(default):
        return None
    remote = [
        a
        for a in aliases
        if a.name != "default" and a.host and a.same_server is not True and _postgres(a)
    ]
    writes = _router_writes(read, repo)
    targets = [a for a in remote if a.name in writes]
    if len(targets) != 1:
        return None
    target = targets[0]
    return SharedServer(target.name, target.host or "", target.evidence[:1] + writes[target.name])


def _router_writes(read: SettingsRead, repo: RepoFiles) -> dict[str, tuple[Evidence, ...]]:
    """The aliases the project's DATABASE_ROUTERS return from `db_for_write` (literals only)."""
    routers = read.get("DATABASE_ROUTERS")
    names = (
        [v.value for v in routers.value if isinstance(getattr(v, "value", None), str)]
        if routers is not None and isinstance(routers.value, list)
        else []
    )
    out: dict[str, tuple[Evidence, ...]] = {}
    for dotted in names:
        module, _, cls = dotted.rpartition(".")
        suffix = module.replace(".", "/") + ".py"
        for path in [p for p in repo.paths if p == suffix or p.endswith("/" + suffix)]:
            try:
                tree = ast.parse(repo.text(path) or "")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not (isinstance(node, ast.ClassDef) and node.name == cls):
                    continue
                for method in node.body:
                    if isinstance(method, ast.FunctionDef) and method.name == "db_for_write":
                        for ret in ast.walk(method):
                            if (
                                isinstance(ret, ast.Return)
                                and isinstance(ret.value, ast.Constant)
                                and isinstance(ret.value.value, str)
                            ):
                                where = Evidence(
                                    path,
                                    ret.lineno,
                                    repo.quote(path, ret.lineno),
                                    Resolution.LITERAL,
                                )
                                out[ret.value.value] = out.get(ret.value.value, ()) + (where,)
    return out
