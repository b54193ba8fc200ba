"""Slot arithmetic for one role, from the settings and counts a snapshot read.

The server's own check (domain reference §1.2): a role that is not a superuser is refused
once the free slots fall to `superuser_reserved_connections` (+ `reserved_connections`,
PG16+, unless it has privileges of `pg_use_reserved_connections`). Every client backend,
whoever holds it (superusers and this probe included), takes a free slot; walsenders,
autovacuum and background workers do not. The role and database CONNECTION LIMITs are
separate checks, and do not apply to superusers.

Each function returns its figure with the formula that produced it, for the report.
"""

from __future__ import annotations

from pgslots.live.model import DatabaseLimit, RoleInfo


def usable_slots(
    max_connections: int, superuser_reserved: int, reserved: int | None, role: RoleInfo
) -> tuple[int, str]:
    """The slots `role` may ever fill: the ceiling before anyone else takes theirs."""
    if role.is_superuser:
        return max_connections, (
            f"{max_connections} max_connections (role {role.name} is a superuser: no slot is reserved against it)"
        )
    usable = max_connections - superuser_reserved
    formula = (
        f"{max_connections} max_connections - {superuser_reserved} superuser_reserved_connections"
    )
    if reserved:
        if role.can_use_reserved:
            formula += (
                f" (role {role.name} has privileges of pg_use_reserved_connections: "
                f"the {reserved} reserved_connections are open to it)"
            )
        else:
            usable -= reserved
            formula += f" - {reserved} reserved_connections"
    return usable, f"{formula} = {usable}"


def headroom(
    usable: int, client_backends: int, role: RoleInfo, database: DatabaseLimit | None
) -> tuple[int, str, str]:
    """(slots `role` can still open now, what limits it, the formula): the tightest of the
    server's free ordinary slots, the role's CONNECTION LIMIT and the database's."""
    server_room = usable - client_backends
    options = [
        (
            server_room,
            "server",
            f"{usable} usable - {client_backends} client backends = {server_room}",
        )
    ]
    if not role.is_superuser:
        if role.connection_limit is not None and role.connections is not None:
            room = role.connection_limit - role.connections
            options.append(
                (
                    room,
                    "role limit",
                    (
                        f"role {role.name} CONNECTION LIMIT {role.connection_limit} "
                        f"- {role.connections} held = {room}"
                    ),
                )
            )
        if (
            database is not None
            and database.connection_limit is not None
            and database.connections is not None
        ):
            room = database.connection_limit - database.connections
            options.append(
                (
                    room,
                    "database limit",
                    (
                        f"database {database.name} CONNECTION LIMIT "
                        f"{database.connection_limit} - {database.connections} held = {room}"
                    ),
                )
            )
    room, limited_by, formula = min(options, key=lambda option: option[0])
    if room < 0:
        formula += " (below zero: sessions opened before a limit was lowered, or superusers in reserved slots)"
    return max(room, 0), limited_by, formula
