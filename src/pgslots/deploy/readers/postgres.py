"""PostgreSQL and pgbouncer configuration: `postgresql.conf`, `-c name=value` flags,
`pgbouncer.ini`, and the environment variables of the common pgbouncer images
(edoburu/pgbouncer, bitnami/pgbouncer, the official-style `PGBOUNCER_*`)."""

from __future__ import annotations

import configparser
import re

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.envfiles import Env
from pgslots.evidence import Evidence, Resolution

SLOT_SETTINGS = ("max_connections", "superuser_reserved_connections", "reserved_connections")
_CONF_LINE = re.compile(r"^\s*(?P<name>[a-z_]+)\s*=?\s*'?(?P<value>[^'#\s]+)'?")


def read_postgresql_conf(repo: RepoFiles, rel: str) -> dict[str, tuple[int, Evidence]]:
    """The slot settings a postgresql.conf sets (uncommented lines only)."""
    out: dict[str, tuple[int, Evidence]] = {}
    for number, line in enumerate(repo.lines(rel), start=1):
        if line.lstrip().startswith("#"):
            continue
        match = _CONF_LINE.match(line)
        if match and match["name"] in SLOT_SETTINGS:
            try:
                out[match["name"]] = (
                    int(match["value"]),
                    Evidence(rel, number, line.strip(), Resolution.LITERAL),
                )
            except ValueError:
                pass
    return out


def flags_from_argv(argv: list[str]) -> dict[str, str]:
    """`postgres -c max_connections=200 -c shared_buffers=1GB` -> settings; also `--name=value`."""
    out: dict[str, str] = {}
    for index, word in enumerate(argv):
        if word == "-c" and index + 1 < len(argv):
            name, _, value = argv[index + 1].partition("=")
            out[name.strip().replace("-", "_")] = value.strip()
        elif word.startswith("-c") and "=" in word and len(word) > 2:
            name, _, value = word[2:].partition("=")
            out[name.strip()] = value.strip()
        elif word.startswith("--") and "=" in word:
            name, _, value = word[2:].partition("=")
            out[name.replace("-", "_")] = value
    return out


PGBOUNCER_KEYS = (
    "pool_mode",
    "default_pool_size",
    "max_client_conn",
    "max_db_connections",
    "reserve_pool_size",
    "min_pool_size",
    "max_user_connections",
)


def pgbouncer_from_env(env: Env) -> dict[str, tuple[str, Evidence]]:
    """pgbouncer settings from the variables its images read (POOL_MODE, PGBOUNCER_POOL_MODE, ...)."""
    out: dict[str, tuple[str, Evidence]] = {}
    for key in PGBOUNCER_KEYS:
        for name in (key.upper(), f"PGBOUNCER_{key.upper()}"):
            found = env.get(name)
            if found is not None:
                out[key] = (found.value, found.evidence)
    return out


def read_pgbouncer_ini(
    repo: RepoFiles, rel: str
) -> tuple[dict[str, tuple[str, Evidence]], list[str]]:
    """[pgbouncer] settings and the [databases] entries of a pgbouncer.ini."""
    text = repo.text(rel)
    if text is None:
        return {}, []
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, inline_comment_prefixes=(";", "#")
    )
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        repo.broken(rel, getattr(exc, "lineno", None), f"invalid ini: {exc.__class__.__name__}")
        return {}, []
    lines = text.splitlines()
    settings: dict[str, tuple[str, Evidence]] = {}
    if parser.has_section("pgbouncer"):
        for key in PGBOUNCER_KEYS:
            if parser.has_option("pgbouncer", key):
                value = parser.get("pgbouncer", key).strip()
                number = next(
                    (i for i, line in enumerate(lines, start=1) if line.strip().startswith(key)),
                    None,
                )
                settings[key] = (
                    value,
                    Evidence(rel, number, f"{key} = {value}", Resolution.LITERAL),
                )
    databases = parser.options("databases") if parser.has_section("databases") else []
    return settings, [d for d in databases if d != "*"]
