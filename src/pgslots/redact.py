"""Keep secrets out of every output.

Two layers. At the source, readers call `redact_dsn` / `redact_value` on what they quote.
At the sink, the CLI passes every rendered output through `Redactor.scrub`, which also
removes any secret value registered while reading (an env file's `SECRET_KEY`, a
password found in a DSN), wherever it appears later.
"""

from __future__ import annotations

import re

MASK = "****"

SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth|salt|signature|"
    r"^key$|_key$|dsn$|database_url|db_url|broker_url|redis_url|sentry_dsn|license)",
    re.IGNORECASE,
)
"""Names whose values we never show: PASSWORD, SECRET_KEY, DATABASE_URL, SENTRY_DSN, ..."""

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"&;]+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<pw>[^&\s#]+)", re.IGNORECASE)


def redact_dsn(text: str) -> str:
    """Mask passwords in URL (`postgres://u:pw@h`) and key/value (`password=pw`) conninfo,
    and in `?password=` query parameters; everything else stays readable."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redact_value(name: str, value: str) -> str:
    """The value as it may be shown: masked entirely for a secret-looking name, else with
    any embedded DSN password masked."""
    if is_secret_name(name) and value:
        # A URL keeps its shape (scheme, host) so the reader sees which server it names.
        if _URL_USERINFO.search(value):
            return redact_dsn(value)
        return MASK
    return redact_dsn(value)


class Redactor:
    """Collects secret values met while reading, and scrubs them from rendered output.

    A value can be both a secret and a public name: example compose files set
    `POSTGRES_PASSWORD: paperless` next to `POSTGRES_USER: paperless` in a repository
    called `paperless`. Scrubbing it everywhere would mask every path, module and role
    name in the report, while hiding nothing (the same word is the project's name). Such
    values are `publish`ed (repository path components, database user and database
    names); `scrub` leaves them alone, and the places where they stand as a password
    are still masked at the source (`redact_value`, `redact_dsn`)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._public: set[str] = set()

    def register(self, value: str | None) -> None:
        # Very short values ("1", "on") would mangle unrelated text and are no secret anyway.
        if value and len(value) >= 4:
            self._secrets.add(value)

    def register_named(self, name: str, value: str | None) -> None:
        if value and is_secret_name(name):
            self.register(value)
            for match in _URL_USERINFO.finditer(value):
                self.register(match["pw"])

    def publish(self, *values: str | None) -> None:
        """Names the output must be able to show (see the class docstring)."""
        self._public.update(v for v in values if v)

    def scrub(self, text: str) -> str:
        text = redact_dsn(text)
        for secret in sorted(self._secrets - self._public, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


REDACTOR = Redactor()
"""The process-wide redactor the CLI applies to everything it prints or writes."""
