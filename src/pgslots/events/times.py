"""Reading the times that inputs write, and the times users type, into aware UTC datetimes.

Inputs write time in many ways: epoch milliseconds (New Relic), epoch seconds (its
TIMESERIES buckets), ISO 8601 with or without a zone (Sentry, application logs), Python
`logging`'s `2026-05-11 22:22:05,123`. A time without a zone is read in the zone the user
gave with `--tz` (UTC by default) and the caller counts it, so the report can say so.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from pgslots.errors import InputError

UTC = dt.timezone.utc

# Epoch values above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_EPOCH_MS_THRESHOLD = 1e11
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

_ISO_LIKE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?P<frac>[.,]\d{1,9})?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$"
)
_HUMAN_FORMATS = (
    "%b %d, %Y %H:%M:%S",  # May 11, 2026 22:22:05
    "%B %d, %Y %H:%M:%S",
    "%b %d, %Y %I:%M:%S %p",  # May 11, 2026 10:22:05 PM
    "%B %d, %Y %I:%M:%S %p",
    "%d/%b/%Y:%H:%M:%S %z",  # access-log style
)


def from_epoch(value: float) -> dt.datetime:
    """Epoch seconds or milliseconds (told apart by magnitude) as aware UTC."""
    seconds = value / 1000.0 if abs(value) >= _EPOCH_MS_THRESHOLD else float(value)
    return dt.datetime.fromtimestamp(seconds, UTC)


def parse_time(text: str, tz: dt.tzinfo = UTC) -> tuple[dt.datetime, bool] | None:
    """`(aware UTC datetime, was_naive)`, or None when the text is no time we know.

    Accepts epoch numbers (s or ms), ISO 8601 (`T` or space, `,` or `.` before the
    fraction, `Z`/`UTC`/offsets) and a few human forms that UI exports use.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return from_epoch(float(text)), False
    except (ValueError, OverflowError, OSError):
        pass
    match = _ISO_LIKE.match(text)
    if match:
        frac = (match["frac"] or "")[1:7].ljust(6, "0") if match["frac"] else "000000"
        clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
        try:
            naive = dt.datetime.fromisoformat(f"{match['date']}T{clock}.{frac}")
        except ValueError:
            return None
        zone = match["zone"]
        if zone is None:
            return naive.replace(tzinfo=tz).astimezone(UTC), True
        if zone in ("Z", "UTC", "GMT"):
            return naive.replace(tzinfo=UTC), False
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return naive.replace(tzinfo=dt.timezone(sign * offset)).astimezone(UTC), False
    for fmt in _HUMAN_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=tz).astimezone(UTC), True
        return parsed.astimezone(UTC), False
    return None


def from_epoch_us(text: str) -> dt.datetime | None:
    """journald's `__REALTIME_TIMESTAMP`: microseconds since the epoch, as a string."""
    try:
        return _EPOCH + dt.timedelta(microseconds=int(text))
    except (ValueError, OverflowError):
        return None


def parse_syslog_time(text: str, year: int, tz: dt.tzinfo = UTC) -> dt.datetime | None:
    """syslog's `Nov 25 15:12:29` (journald `short`), which carries neither year nor zone:
    read in `year` and `tz`, as aware UTC."""
    try:
        naive = dt.datetime.strptime(f"{year} {' '.join(text.split())}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=tz).astimezone(UTC)


def parse_zone(name: str) -> dt.tzinfo:
    """`--tz`: an IANA name (`Europe/Paris`), `UTC`, or a fixed offset (`+02:00`)."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if match:
        offset = dt.timedelta(hours=int(match[2]), minutes=int(match[3] or 0))
        return dt.timezone(-offset if match[1] == "-" else offset)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--tz {name!r} is not a time zone (use an IANA name such as Europe/Paris, UTC, or +02:00)"
        ) from None


def parse_user_time(text: str, tz: dt.tzinfo, option: str) -> dt.datetime:
    """`--since`/`--until`: ISO 8601 (a date alone means its midnight); without a zone, in `--tz`."""
    stripped = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        stripped += " 00:00:00"
    parsed = parse_time(stripped, tz) if not re.fullmatch(r"[\d.]+", stripped) else None
    if parsed is None:
        raise InputError(
            f"{option} {text!r} is not a time (use ISO 8601, e.g. 2026-05-11T22:20:00Z or '2026-05-11 22:20')"
        )
    return parsed[0]
