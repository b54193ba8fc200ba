"""Classification of every wording the domain reference lists, as real clients and servers print them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgslots.events.model import Category as C
from pgslots.events.taxonomy import (
    classify,
    combination_key,
    limited_database,
    limited_role,
    reserved_wording,
)

# Texts as psycopg 3.1.12 / 3.1.18 / 3.1.20 / 3.3.9, psycopg2 2.9 and the servers printed them.
CASES = [
    ("connection failed: FATAL:  sorry, too many clients already", (C.TOO_MANY_CLIENTS,)),
    (
        'connection failed: :1", port 54316 failed: FATAL:  sorry, too many clients already',
        (C.TOO_MANY_CLIENTS,),
    ),
    (
        'connection failed: connection to server at "127.0.0.1", port 54315 failed: FATAL:  remaining '
        "connection slots are reserved for non-replication superuser connections",
        (C.RESERVED_SUPERUSER,),
    ),
    (
        'connection to server at "127.0.0.1", port 54318 failed: FATAL:  remaining connection slots are '
        "reserved for roles with the SUPERUSER attribute\n",
        (C.RESERVED_SUPERUSER,),
    ),
    (
        'remaining connection slots are reserved for roles with privileges of the "pg_use_reserved_connections" role',
        (C.RESERVED_ROLE,),
    ),
    (
        "remaining connection slots are reserved for roles with privileges of pg_use_reserved_connections",
        (C.RESERVED_ROLE,),
    ),
    (
        'connection failed: connection to server on socket "/run/pg/.s.PGSQL.5432" failed: FATAL:  too many connections for role "lim"',
        (C.ROLE_LIMIT,),
    ),
    ('FATAL:  too many connections for database "limdb"', (C.DATABASE_LIMIT,)),
    (
        "number of requested standby connections exceeds max_wal_senders (currently 10)",
        (C.WALSENDER_LIMIT,),
    ),
    (
        'number of requested standby connections exceeds "max_wal_senders" (currently 10)',
        (C.WALSENDER_LIMIT,),
    ),
    ("FATAL:  the database system is starting up", (C.SERVER_NOT_READY,)),
    ("the database system is shutting down", (C.SERVER_NOT_READY,)),
    ("the database system is not yet accepting connections", (C.SERVER_NOT_READY,)),
    ("couldn't get a connection after 30.00 sec", (C.POOL_TIMEOUT,)),
    ("ERROR:  no more connections allowed (max_client_conn)", (C.PGBOUNCER_MAX_CLIENT_CONN,)),
    ("ERROR:  query_wait_timeout", (C.PGBOUNCER_QUERY_WAIT_TIMEOUT,)),
    (
        "server login has been failing, cached error: password authentication failed (server_login_retry)",
        (C.PGBOUNCER_LOGIN_FAILED,),
    ),
    (
        "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
        (C.STALE_CONNECTION,),
    ),
    (
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: Connection refused',
        (C.NETWORK,),
    ),
    ("something else entirely", (C.OTHER,)),
]


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_every_known_wording(message, expected):
    assert classify(message) == expected


def test_multi_attempt_block_keeps_both_categories_in_order():
    message = (
        'connection failed: connection to server at "::1", port 5432 failed: FATAL:  sorry, too many clients already\n'
        "Multiple connection attempts failed. All failures were:\n"
        "- host: 'db', port: '5432', hostaddr: '10.0.0.1': connection failed: connection to server at "
        '"10.0.0.1", port 5432 failed: FATAL:  remaining connection slots are reserved for non-replication '
        "superuser connections\n"
        "- host: 'db', port: '5432', hostaddr: '::1': connection failed: connection to server at \"::1\", "
        "port 5432 failed: FATAL:  sorry, too many clients already"
    )
    assert classify(message) == (C.TOO_MANY_CLIENTS, C.RESERVED_SUPERUSER)
    assert combination_key(classify(message)) == "too_many_clients+reserved_superuser"
    assert combination_key((C.RESERVED_SUPERUSER, C.TOO_MANY_CLIENTS)) == combination_key(
        classify(message)
    )


def test_sqlstate_settles_an_untranslated_wording_without_guessing():
    assert classify("demasiados clientes", "53300") == (C.SLOTS_UNSPECIFIED,)
    assert classify("el sistema de base de datos está iniciándose", "57P03") == (
        C.SERVER_NOT_READY,
    )
    assert classify("whatever", None, "psycopg_pool:PoolTimeout") == (C.POOL_TIMEOUT,)


def test_names_and_wording_generation():
    assert limited_role('too many connections for role "app"') == "app"
    assert limited_database('too many connections for database "shop"') == "shop"
    assert reserved_wording("reserved for non-replication superuser connections") == "pre16"
    assert reserved_wording("reserved for roles with the SUPERUSER attribute") == "16+"
    assert reserved_wording("sorry, too many clients already") is None


@given(st.text(max_size=300))
def test_any_text_gets_at_least_one_category(text):
    categories = classify(text)
    assert categories and len(set(categories)) == len(categories)
