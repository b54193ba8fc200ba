"""The catalog and statistics queries behind a snapshot, and nothing else.

All of them read views any role may read (`pg_settings`, `pg_roles`, `pg_database`,
`pg_stat_activity`), so a `pg_monitor` role is enough and no superuser is needed. They run
in one read-only transaction: PostgreSQL caches the activity snapshot for the whole
transaction, so the counts of the different queries agree with each other.

Without `pg_read_all_stats` (which `pg_monitor` includes), other roles' rows of
`pg_stat_activity` keep their database, user and application_name but hide
`backend_type`, state, client address and times. Such a row is counted as a client
backend when it has both a database and a user; see `ACTIVITY`.
"""

from __future__ import annotations

from typing import Any

import psycopg

IDENTITY = """
SELECT current_user, current_database(), pg_backend_pid(), now(),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
"""

SETTINGS = """
SELECT name, setting FROM pg_settings
WHERE name IN ('server_version', 'server_version_num', 'max_connections',
               'superuser_reserved_connections', 'reserved_connections')
"""

# Client backends grouped; a row hidden for lack of privilege has a NULL backend_type and is
# counted when it has a database and a user (what every client backend has; background
# processes have neither or only one; see the module docstring for what may slip in).
ACTIVITY = """
SELECT datname, usename, application_name,
       CASE WHEN client_addr IS NOT NULL THEN host(client_addr)
            WHEN client_port = -1 THEN 'local' END AS client,
       state,
       backend_type IS NULL AS hidden,
       count(*)::int,
       max(extract(epoch FROM now() - state_change))
           FILTER (WHERE state = 'idle')::float8,
       max(extract(epoch FROM now() - state_change))
           FILTER (WHERE state LIKE 'idle in transaction%')::float8,
       bool_or(pid = pg_backend_pid())
FROM pg_stat_activity
WHERE backend_type = 'client backend'
   OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL)
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 7 DESC, 1, 2, 3, 4, 5
"""

OTHER_BACKENDS = """
SELECT backend_type, count(*)::int FROM pg_stat_activity
WHERE backend_type IS NOT NULL AND backend_type <> 'client backend'
GROUP BY 1 ORDER BY 1
"""

_ROLE_COLUMNS = "rolname, rolsuper, CASE WHEN rolconnlimit < 0 THEN NULL ELSE rolconnlimit END"
# pg_use_reserved_connections exists from PG16 on; before that the column is NULL.
_RESERVED_16 = ", pg_has_role(oid, 'pg_use_reserved_connections', 'USAGE')"
_RESERVED_OLD = ", NULL::bool"

ROLES = """
SELECT {columns} FROM pg_roles
WHERE rolname = ANY(%(names)s) OR (rolcanlogin AND rolconnlimit >= 0)
ORDER BY rolname
"""

DATABASES = """
SELECT datname, CASE WHEN datconnlimit < 0 THEN NULL ELSE datconnlimit END
FROM pg_database
WHERE datname = ANY(%(names)s) OR (datallowconn AND datconnlimit >= 0)
ORDER BY datname
"""


def fetch(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def roles_query(server_version_num: int) -> str:
    extra = _RESERVED_16 if server_version_num >= 160000 else _RESERVED_OLD
    return ROLES.format(columns=_ROLE_COLUMNS + extra)
