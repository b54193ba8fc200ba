"""`log_line_prefix` as a parser.

PostgreSQL writes each stderr line as `<prefix><SEVERITY>:  <message>`, the prefix being
expanded from `log_line_prefix` (PG15 `elog.c log_line_prefix()`, PG18 `log_status_format()`).
We compile the prefix's escapes into one bytes regex with a named group per field, so a
reader can parse a line's prefix with a single `fullmatch` up to where the severity begins.

Rules the compiler follows, from the server's code:

* `%q` ends the prefix for processes without a session (postmaster, checkpointer, ...):
  everything after it is optional as a whole.
* Session fields print empty (or `[unknown]` before the startup packet is read) outside a
  session; every field therefore allows the empty string.
* `%-10u` / `%10u` pad with spaces; padding is allowed around any escape.
* `%r` is `host(port)`, or `host` alone for Unix sockets (`[local]`).
* An unknown escape prints nothing.

Without `--log-line-prefix` we try the common prefixes on the file's first lines and keep
the one that parses most of them. When none does, `describe_mismatch` says what the lines
look like and which escapes were recognised, so the user can pass the right prefix instead
of getting an empty report (pgBadger's silent "no dataset").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from pgslots.errors import InputError
from pgslots.events.pglog import lines as msg

SEVERITIES = (
    "DEBUG5",
    "DEBUG4",
    "DEBUG3",
    "DEBUG2",
    "DEBUG1",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "LOG",
    "FATAL",
    "PANIC",
    "DETAIL",
    "HINT",
    "QUERY",
    "CONTEXT",
    "STATEMENT",
    "LOCATION",
)
_SEVERITY = "|".join(SEVERITIES)

# One pattern per escape: the named group (None for fields we never read) and its regex.
# Free-text fields are lazy so that a fullmatch up to the severity settles their extent.
_TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_ESCAPES: dict[str, tuple[str | None, str]] = {
    "m": ("m", _TIMESTAMP + r"\.\d{3} [^ ]+"),
    "t": ("t", _TIMESTAMP + r" [^ ]+"),
    "n": ("n", r"\d+\.\d{3}"),
    "p": ("pid", r"\d+"),
    "P": (None, r"\d*"),
    "u": (
        "user",
        r"[^ ]*?",
    ),  # names with spaces are legal but rare; lines with them count as skipped
    "d": ("db", r"[^ ]*?"),
    "a": ("app", r".*?"),
    "r": ("remote", r"[^ ]*?"),
    "h": ("host", r"[^ ]*?"),
    "L": (None, r"[^ ]*?"),
    "b": ("backend_type", r".*?"),
    "c": ("session", r"[0-9a-f]*\.?[0-9a-f]*"),
    "l": (None, r"\d*"),
    "s": (None, r"(?:" + _TIMESTAMP + r" [^ ]+)?"),
    "v": (None, r"[^ ]*?"),
    "x": (None, r"\d*"),
    "e": ("sqlstate", r"[0-9A-Z]{5}|"),
    "i": ("tag", r".*?"),
    "Q": (None, r"-?\d*"),
}
SESSION_ONLY = frozenset(
    "uda rhLbciesvxQP".replace(" ", "")
)  # print nothing useful outside a session
_ESCAPE_TOKEN = re.compile(r"%(-?\d+)?(.)", re.S)

# The prefixes we recognise without being told, most specific first: the upstream default,
# Debian's, the lab's, Amazon RDS's, pgBadger's recommended ones, and other frequent choices.
COMMON_PREFIXES: tuple[str, ...] = (
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",  # pgBadger (stderr)
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",  # pgBadger, without line numbers
    "%t [%p]: [%l-1] user=%u,db=%d ",  # pgBadger, older
    "%t [%p]: [%l-1] ",  # pgBadger, minimal
    "%m [%p] %q%u@%d/%a ",  # Debian-style with the application (pgslots' lab)
    "%m [%p] %q%u@%d ",  # Debian / Ubuntu postgresql.conf
    "%t [%p] %q%u@%d ",
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    "%m:%r:%u@%d:[%p]:",  # RDS with milliseconds
    "%t:%r:%u@%d:[%p]:",  # Amazon RDS / Aurora
    "%m [%p] ",  # upstream default (PG 10+)
    "%t [%p] ",
    "%m [%p-%l] ",
    "%t [%p-%l] ",
    "%m %u %d [%p] ",
    "%m [%p]: [%l-1] ",
    "%m %p ",
    "%t %p ",
    "[%p] ",  # no time at all (syslog adds its own)
    "",  # log_line_prefix = '' (before PG 10 the default)
)


# What the chunk pattern (`LinePrefix.bulk`) reads of a prefix: the time in three parts (the
# second's text, its fraction, its zone), the pid and the session fields a FATAL needs.
# Every class excludes the newline, so that a match never leaves its line.
_BULK_TIME = {
    "m": r"(?P<sec>" + _TIMESTAMP + r")(?P<frac>\.\d{3}) (?P<zone>[^ \n]+)",
    "t": r"(?P<sec>" + _TIMESTAMP + r")(?P<frac>) (?P<zone>[^ \n]+)",
    "n": r"(?P<sec>\d+)(?P<frac>\.\d{3})(?P<zone>)",
}
BULK_FIELDS = ("pid", "user", "db", "app", "remote", "host", "sqlstate")
_BULK_ESCAPES: dict[str, tuple[str | None, str]] = {
    letter: (
        name if name in BULK_FIELDS else None,
        pattern.replace("[^ ]", "[^ \\n]").replace(".*?", "[^\\n]*?"),
    )
    for letter, (name, pattern) in _ESCAPES.items()
}
# The messages the chunk pattern reads, after the prefix, each in its own group so that the
# reader tells them apart without looking at their text: `received` the client address of a
# `connection received` (PostgreSQL always prints one), `disconnection` a disconnection (the
# session time after it is read only when needed), `log` the other LOG messages that matter
# (an authorization, a walsender's, a server start; few distinct texts), `fatal` a FATAL's
# message. A line that is neither a log line for this prefix, nor blank, nor a continuation
# line (a tab) gives a match too, with no group set (no `sec`).
_BULK_MESSAGES = (
    b"(?:LOG:  (?:"
    + msg.RECEIVED
    + rb"(?P<received>[^ \n]+)|(?P<disconnection>"
    + msg.DISCONNECTION
    + b")|(?P<log>"
    + msg.AUTHORIZED
    + rb"[^\n]*|"
    + msg.REPLICATION_AUTHORIZED
    + b"|"
    + msg.STARTING
    + rb"[^\n]*|"
    + msg.READY
    + b"))"
    + rb"|FATAL:  (?P<fatal>[^\n]+))"
)


@dataclasses.dataclass(frozen=True)
class LinePrefix:
    """A compiled `log_line_prefix`.

    `line_regex` matches a whole line: prefix, severity, message (recognition). `bulk`
    reads a whole chunk with one `findall`: from each line's preceding newline, the prefix
    and one of the messages that matter (`_BULK_MESSAGES`), or flags the line as not a log
    line (group `bad`); every other line gives no match.
    """

    text: str
    line_regex: re.Pattern[bytes]
    fields: frozenset[str]  # fields present: "m", "t", "n", "pid", "user", "db", "app", ...
    bulk: re.Pattern[bytes]

    @property
    def has_time(self) -> bool:
        return bool(self.fields & {"m", "t", "n"})

    @property
    def has_client(self) -> bool:
        return bool(self.fields & {"remote", "host"})


def _body(
    text: str, escapes: dict[str, tuple[str | None, str]], times: dict[str, str] | None = None
) -> tuple[str, set[str]]:
    """The regex source of a prefix, and the named fields it captures. `times` replaces the
    time escapes' patterns (the first one only; later ones do not capture), for the chunk
    pattern, where a lazy field of non-spaces followed by a space is made greedy too."""
    parts: list[str] = []
    tail: list[str] = []
    target = parts
    used: set[str] = set()
    pos = 0
    tokens = list(_ESCAPE_TOKEN.finditer(text))
    for index, token in enumerate(tokens):
        target.append(re.escape(text[pos : token.start()]))
        pos = token.end()
        padding, letter = token.group(1), token.group(2)
        if letter == "%":
            target.append("%")
            continue
        if letter == "q":
            target = tail
            continue
        if letter not in escapes:
            continue  # the server prints nothing for an escape it does not know
        name, pattern = escapes[letter]
        if times is not None and pattern.endswith("*?") and "^ " in pattern:
            if text[pos : pos + 1] == " ":
                pattern = pattern[:-1]  # greedy: the same match, as the field holds no space
            elif _splits_alike(text, pos, tokens[index + 1 : index + 2], escapes):
                pattern = (
                    pattern[:-3] + re.escape(text[pos]) + "]*"
                )  # `%u@%d `: up to the first `@`, no backtracking
        if times is not None and letter in times and not used & {"m", "t", "n"}:
            used.add(letter)
            pattern = times[letter]
        elif name and name not in used:
            used.add(name)
            pattern = f"(?P<{name}>{pattern})"
        else:
            pattern = f"(?:{pattern})"
        if padding:
            pattern = f" *{pattern} *"
        target.append(pattern)
    target.append(re.escape(text[pos:]))
    return "".join(parts) + (f"(?:{''.join(tail)})?" if tail else ""), used


def _splits_alike(
    text: str, pos: int, following: list[re.Match[str]], escapes: dict[str, tuple[str | None, str]]
) -> bool:
    """Whether a field of non-spaces at `pos`, followed by one literal character and then by
    another field of non-spaces ending at a space (`%u@%d `), may stop at the first such
    character instead of trying every later one: wherever the two fields split, they end
    at the same space, so no later split can make a line match that the first did not."""
    if (
        not following
        or following[0].start() != pos + 1
        or text[pos] in " %"
        or following[0].group(1)
    ):
        return False
    after = following[0].group(2)
    return (
        after in escapes
        and "[^ " in escapes[after][1]
        and text[following[0].end() : following[0].end() + 1] == " "
    )


def _bulk(text: str) -> re.Pattern[bytes]:
    body, _used = _body(text, _BULK_ESCAPES, _BULK_TIME)
    lead = _lead(body)
    return re.compile(
        b"\n(?:" + body.encode() + _BULK_MESSAGES + b"|(?!\t|\r?\n|" + lead + b")[^\n])"
    )


def _lead(body: str) -> bytes:
    """The start every log line must have: the prefix up to its first free-text field (cheap
    to check on every line, and enough to tell log lines from foreign ones), capturing nothing."""
    plain = re.sub(r"\(\?P<\w+>", "(?:", body)
    cuts = [plain.find(f) for f in ("[^ \\n]*", "[^\\n]*?", "(?:[^ \\n]*", "(?:[^\\n]*?)")]
    cut = min((c for c in cuts if c > 0), default=len(plain))
    for candidate in (plain[:cut], plain[: plain.find(")") + 1]):
        try:
            re.compile(candidate)
            return candidate.encode()
        except re.error:  # cut inside an optional group (after %q)
            continue
    return b""


def compile_prefix(text: str) -> LinePrefix:
    """Compile a `log_line_prefix` value (as `SHOW log_line_prefix` prints it)."""
    body, used = _body(text, _ESCAPES)
    source = body.encode()
    try:
        line_regex = re.compile(
            source + rb"(?P<severity>" + _SEVERITY.encode() + rb"):  (?P<message>.*)", re.S
        )
        bulk = _bulk(text)
    except re.error as exc:  # pragma: no cover - every escape above is a valid pattern
        raise InputError(f"cannot compile --log-line-prefix {text!r}: {exc}") from None
    return LinePrefix(text, line_regex, frozenset(used), bulk)  # used: the escapes' fields only


def sample_lines(head: bytes, limit: int = 1000) -> list[bytes]:
    """The first log lines of a file (continuation lines, which start with a tab, and blank
    lines left out): what recognition and the mismatch message look at."""
    lines = head.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut in the middle
    return [line.rstrip(b"\r") for line in lines if line.strip() and not line.startswith(b"\t")][
        :limit
    ]


def match_count(prefix: LinePrefix, lines: Sequence[bytes]) -> int:
    return sum(1 for line in lines if prefix.line_regex.fullmatch(line))


def _score(prefix: LinePrefix, lines: Sequence[bytes]) -> tuple[int, int, int]:
    """(lines parsed, fields read non-empty, fewer fields).

    Several prefixes can parse the same lines: one with a %q tail parses the default
    prefix's lines as if no line had a session, and a free-text field can swallow what a
    longer prefix would split (`db=%d ` reads `appdb,app=web,client=10.0.0.1` as the
    database). The prefix that reads more fields out of the lines explains them better; on
    a tie, the simpler one is the honest guess."""
    parsed = filled = 0
    names = [name for name in prefix.line_regex.groupindex if name in prefix.fields]
    for line in lines:
        match = prefix.line_regex.fullmatch(line)
        if match:
            parsed += 1
            filled += sum(1 for name in names if match.group(name))
    return parsed, filled, -len(prefix.fields)


def recognise(lines: Sequence[bytes]) -> LinePrefix | None:
    """The common prefix that parses most of the sample; None when none parses at least
    half of it."""
    if not lines:
        return None
    scored = [(_score(compiled(text), lines), index) for index, text in enumerate(COMMON_PREFIXES)]
    (parsed, _filled, _fields), index = max(scored, key=lambda item: (item[0], -item[1]))
    return compiled(COMMON_PREFIXES[index]) if parsed > 0 and parsed * 2 >= len(lines) else None


_COMPILED: dict[str, LinePrefix] = {}


def compiled(text: str) -> LinePrefix:
    if text not in _COMPILED:
        _COMPILED[text] = compile_prefix(text)
    return _COMPILED[text]


# -- saying why a prefix does not fit ------------------------------------------------------------

_SEVERITY_IN_LINE = re.compile(rb"(?:^|[\s:\]>)])(" + _SEVERITY.encode() + rb"):  ")
_LEADS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("%m", re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [^ ]+")),
    ("%t", re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^ ]+")),
    ("%n", re.compile(rb"\d{9,}\.\d{3}")),
    ("[%p]", re.compile(rb"\[\d+\]")),
    ("%u@%d", re.compile(rb"[^ @\[\]]*@[^ ]*")),
)


def describe_prefix_text(before_severity: bytes) -> str:
    """Name the escapes we can see in a line's prefix: '%m [%p] then "xyz "'."""
    seen: list[str] = []
    rest = before_severity
    while rest:
        stripped = rest.lstrip(b" ")
        if stripped is not rest and seen:
            seen.append(" ")
        rest = stripped
        for escape, pattern in _LEADS:
            match = pattern.match(rest)
            if match:
                seen.append(escape)
                rest = rest[match.end() :]
                break
        else:
            break
    known = "".join(seen).strip()
    unknown = rest.decode("utf-8", "replace")
    if not known:
        return f"{unknown!r} (no escape recognised)"
    return f"{known}" + (f" then {unknown!r} (not recognised)" if unknown.strip() else "")


def describe_mismatch(lines: Sequence[bytes], tried: str | None) -> str:
    """One line for the user when no prefix parses the file's first lines."""
    example = next(
        (line for line in lines if _SEVERITY_IN_LINE.search(line)), lines[0] if lines else b""
    )
    shown = example[:160].decode("utf-8", "replace")
    found = _SEVERITY_IN_LINE.search(example)
    if found is None:
        looks = f"no line has a PostgreSQL severity ('LOG:  ', 'FATAL:  ', ...); the first reads {shown!r}"
    else:
        looks = f"they look like {shown!r}; before the severity: {describe_prefix_text(example[: found.start(1)])}"
    if tried is not None:
        return (
            f"0 of the first {len(lines)} lines match --log-line-prefix {tried!r}; {looks}. "
            "Pass the server's value (SHOW log_line_prefix)"
        )
    return (
        f"log_line_prefix not recognised in the first {len(lines)} lines; {looks}. "
        "Pass it with --log-line-prefix (the server's SHOW log_line_prefix)"
    )
