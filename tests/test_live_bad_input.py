"""Bad input to probe and watch: one clear line on stderr, exit 2, and never the password."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from live_support import pgslots
from pgslots.lab.postgres import free_port

PASSWORD = "s3cret-Pa55word"


def assert_one_line_exit_2(result, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("pgslots: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert PASSWORD not in result.stderr


@pytest.fixture
def http_server() -> Iterator[int]:
    """A small TCP server on loopback that answers every request like an HTTP server."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
                        b"Bad Request"
                    )
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


@pytest.mark.parametrize("command", ["probe", "watch"])
def test_malformed_dsn(command):
    result = pgslots(command, f"host='db password={PASSWORD}")
    assert_one_line_exit_2(result, "malformed DSN", "unterminated quoted string")


@pytest.mark.parametrize("command", ["probe", "watch"])
def test_wrong_port(command):
    port = free_port()
    result = pgslots(command, f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/appdb")
    assert_one_line_exit_2(result, "cannot reach the server", f"port={port}", "Connection refused")


def test_bad_port_value():
    result = pgslots("probe", f"host=127.0.0.1 port=notaport password={PASSWORD}")
    assert_one_line_exit_2(result, "malformed DSN", '"notaport"')


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["probe", "watch"])
def test_wrong_password(embedded_pg, start_postgres, command):
    server = start_postgres(embedded_pg, password_auth=True)
    server.create_role("app", password="the-right-one")
    result = pgslots(command, server.dsn("app", password=PASSWORD))
    assert_one_line_exit_2(result, "cannot log in", 'password authentication failed for user "app"')


@pytest.mark.parametrize("sslmode", ["prefer", "disable"])
def test_not_a_postgresql_server(http_server, sslmode):
    result = pgslots(
        "probe", f"host=127.0.0.1 port={http_server} user=app password={PASSWORD} sslmode={sslmode}"
    )
    assert_one_line_exit_2(result, "does not answer like a PostgreSQL server")


def test_options_out_of_range():
    assert_one_line_exit_2(pgslots("probe", "host=x", "--warn", "lots"), "--warn")
    assert_one_line_exit_2(pgslots("watch", "host=x", "--interval", "0"), "--interval")
    assert_one_line_exit_2(pgslots("watch", "host=x", "--prometheus", "nowhere"), "--prometheus")
    assert_one_line_exit_2(pgslots("probe", "host=x", "--format", "sarif"), "is not one of")


def test_topology_file_that_is_not_an_audit(tmp_path):
    bad = tmp_path / "audit.json"
    bad.write_text('{"topology": {"root": "x"}}')
    assert_one_line_exit_2(
        pgslots("probe", "host=x", "--topology", str(bad)), "audit.json", "not an audit topology"
    )
    bad.write_text("{not json")
    assert_one_line_exit_2(pgslots("probe", "host=x", "--topology", str(bad)), "not JSON")
