"""Keep secrets out of every output.

Two layers. At the source, readers call `redact_dsn` / `redact_value` on what they quote.
At the sink, the CLI passes every rendered output through `Redactor.scrub`, which also
removes any secret value registered while reading (an env file's `SECRET_KEY`, a
password found in a DSN), wherever it appears later.

Redaction never changes a value's type or breaks a document: only string values are masked
(a boolean, number or null under a secret-looking name is not a secret and stays as it is),
and a JSON document is scrubbed string by string, so it still parses afterwards.
"""

from __future__ import annotations

import json
import re

MASK = "****"

SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth|salt|signature|"
    r"^key$|_key$|dsn$|database_url|db_url|broker_url|redis_url|sentry_dsn|license)",
    re.IGNORECASE,
)
"""Names whose values we never show: PASSWORD, SECRET_KEY, DATABASE_URL, SENTRY_DSN, ..."""

_URL_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@"
)
_KV_PASSWORD = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"&;]+)", re.IGNORECASE
)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<pw>[^&\s#]+)", re.IGNORECASE)


def redact_dsn(text: str) -> str:
    """Mask passwords in URL (`postgres://u:pw@h`) and key/value (`password=pw`) conninfo,
    and in `?password=` query parameters; everything else stays readable."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


_SETTING_ABOUT_A_SECRET = re.compile(
    r"(?i)[_-](type|method|mode|backends?|provider|enabled|disabled|required|timeout|ttl|length|"
    r"class|policy|host|port|path|file|dir|scheme|header|realm|issuer|audience|algorithms?)$"
)
"""`AUTH_TYPE`, `PASSWORD_MIN_LENGTH`, `TOKEN_TIMEOUT`, `DB_PASSWORD_FILE`: settings *about* a
secret (how to authenticate, where the secret file is), whose value is configuration."""


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not _SETTING_ABOUT_A_SECRET.search(name)


_ROLE_OR_DATABASE_NAME = re.compile(r"(?i)(^|_)(user(name)?|db|database|name)$")
_DATABASE_WORD = re.compile(r"(?i)(db|database|postgres|pg|mysql|mariadb|user)")


def is_role_or_database_name(name: str) -> bool:
    """`POSTGRES_USER`, `POSTGRES_DB`, `KIWI_DB_NAME`, `DATABASE_USER`: a variable that names a
    role or a database, whose value the report must be able to show."""
    return (
        not is_secret_name(name)
        and bool(_ROLE_OR_DATABASE_NAME.search(name))
        and bool(_DATABASE_WORD.search(name))
    )


_NOT_SECRET = re.compile(r"(?i)true|false|yes|no|on|off|null|none|nil|~|[-+]?\d+(\.\d+)?")
"""Booleans, null and small numbers: never a secret, whatever the name (`OG_PASSTHROUGH=true`,
`PASSWORD_MIN_LENGTH=8`). Masking them would only hide configuration, and scrubbing them
from output would rewrite every `true` in a document."""


def is_plain_value(value: str) -> bool:
    """A boolean, null or small number written as text (`true`, `none`, `8`, `600`); a longer
    number under a secret-looking name may be a PIN or a weak password, and stays masked."""
    text = value.strip()
    if not _NOT_SECRET.fullmatch(text):
        return False
    return not text.lstrip("+-")[:1].isdigit() or len(text.lstrip("+-").split(".")[0]) <= 3


def redact_value(name: str, value: str) -> str:
    """The value as it may be shown: masked entirely for a secret-looking name (unless it is
    a boolean, null or small number), else with any embedded DSN password masked."""
    if is_secret_name(name) and value and not is_plain_value(value):
        # A URL keeps its shape (scheme, host) so the reader sees which server it names.
        if _URL_USERINFO.search(value):
            return redact_dsn(value)
        return MASK
    return redact_dsn(value)


class Redactor:
    """Collects secret values met while reading, and scrubs them from rendered output.

    A value can be both a secret and a public name: example compose files set
    `POSTGRES_PASSWORD: catalog` next to `POSTGRES_USER: catalog` in a repository
    called `catalog`. Scrubbing it everywhere would mask every path, module and role
    name in the report, while hiding nothing (the same word is the project's name). Such
    values are `publish`ed (repository path components, database user and database
    names); `scrub` leaves them alone, and the places where they stand as a password
    are still masked at the source (`redact_value`, `redact_dsn`)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._public: set[str] = set()

    def register(self, value: str | None) -> None:
        # Very short values ("1", "on") would mangle unrelated text and are no secret anyway;
        # neither are booleans and numbers ("true" must stay a JSON literal).
        if value and len(value) >= 4 and not is_plain_value(value):
            self._secrets.add(value)

    def register_named(self, name: str, value: str | None) -> None:
        if value and is_role_or_database_name(name):
            # `POSTGRES_USER: kiwi` beside `POSTGRES_PASSWORD: kiwi`: the word is the project's
            # name, in its paths, images and group names (see the class docstring).
            self.publish(value)
        if value and is_secret_name(name):
            self.register(value)
            for match in _URL_USERINFO.finditer(value):
                self.register(match["pw"])

    def publish(self, *values: str | None) -> None:
        """Names the output must be able to show (see the class docstring)."""
        self._public.update(v for v in values if v)

    def scrub(self, text: str) -> str:
        """The text with every registered secret and DSN password masked. A JSON document
        (or JSON Lines) is scrubbed inside its strings only, so it still parses."""
        if _is_json(text):
            return _JSON_STRING.sub(self._scrub_token, text)
        return self._scrub_text(text)

    def _scrub_text(self, text: str) -> str:
        text = redact_dsn(text)
        for secret in sorted(self._secrets - self._public, key=len, reverse=True):
            if secret in text:
                # A whole word only: the secret `xpro` must not turn `mitxpro/` into `mit****/`.
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)
        return text

    def _scrub_token(self, match: re.Match[str]) -> str:
        token = match[0]
        value = json.loads(token)
        clean = self._scrub_text(value)
        return token if clean == value else json.dumps(clean, ensure_ascii=token.isascii())


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _is_json(text: str) -> bool:
    """A JSON document, or JSON Lines (every non-empty line a document)."""
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
        return True
    except ValueError:
        pass
    try:
        for line in text.splitlines():
            if line.strip():
                json.loads(line)
        return True
    except ValueError:
        return False


REDACTOR = Redactor()
"""The process-wide redactor the CLI applies to everything it prints or writes."""

REPORT_WORDS = (
    "development",
    "production",
    "staging",
    "local",
    "test",
    "testing",
    "example",
    "default",
    "debug",
    "django",
    "postgres",
    "postgresql",
    "celery",
    "worker",
    "web",
    "server",
    "secret",
    "password",
    "settings",
)
"""Words the report itself is written with. A development compose file's `SECRET_KEY: development`
is no secret, and scrubbing the word would garble every "for development" in the output; where
such a value stands under a secret-looking name it is still masked at the source."""
REDACTOR.publish(*REPORT_WORDS)
