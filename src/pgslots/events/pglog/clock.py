"""The server log's timestamps, to aware UTC.

`%m` / `%t` (and csvlog/jsonlog `log_time`) print local time in `log_timezone` followed by
the zone's abbreviation as the time zone database names it: `UTC`, `CET`, `CEST`, `EST`,
or a numeric `+02` / `-0330` for zones without a name. `%n` is epoch seconds with
milliseconds. An abbreviation can be ambiguous (`IST` is India, Israel and Ireland; `CST`
the US and China), so we only read the unambiguous ones; any other is read in `--tz` and
said so in the notes, never silently.

Events are grouped per second, so this module converts a second's text once and caches it:
in an incident thousands of lines share a second.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.timezone.utc

_H = 3600
ZONE_OFFSETS: dict[str, int] = {
    "UTC": 0,
    "GMT": 0,
    "UT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": _H,
    "BST": _H,
    "CET": _H,
    "CEST": 2 * _H,
    "MET": _H,
    "MEST": 2 * _H,
    "EET": 2 * _H,
    "EEST": 3 * _H,
    "MSK": 3 * _H,
    "SAST": 2 * _H,
    "WAT": _H,
    "CAT": 2 * _H,
    "EAT": 3 * _H,
    "EST": -5 * _H,
    "EDT": -4 * _H,
    "CDT": -5 * _H,
    "MST": -7 * _H,
    "MDT": -6 * _H,
    "PST": -8 * _H,
    "PDT": -7 * _H,
    "AKST": -9 * _H,
    "AKDT": -8 * _H,
    "HST": -10 * _H,
    "AST": -4 * _H,
    "ADT": -3 * _H,
    "NST": -3 * _H - 1800,
    "NDT": -2 * _H - 1800,
    "JST": 9 * _H,
    "KST": 9 * _H,
    "HKT": 8 * _H,
    "SGT": 8 * _H,
    "AWST": 8 * _H,
    "PHT": 8 * _H,
    "WIB": 7 * _H,
    "ICT": 7 * _H,
    "PKT": 5 * _H,
    "NPT": 5 * _H + 2700,
    "ACST": 9 * _H + 1800,
    "ACDT": 10 * _H + 1800,
    "AEST": 10 * _H,
    "AEDT": 11 * _H,
    "NZST": 12 * _H,
    "NZDT": 13 * _H,
}
_NUMERIC = re.compile(r"([+-])(\d{2}):?(\d{2})?")


def zone_offset(name: str) -> int | None:
    """Seconds east of UTC for a zone as PostgreSQL prints it, or None if we cannot tell."""
    if name in ZONE_OFFSETS:
        return ZONE_OFFSETS[name]
    match = _NUMERIC.fullmatch(name)
    if match:
        seconds = int(match.group(2)) * _H + int(match.group(3) or 0) * 60
        return -seconds if match.group(1) == "-" else seconds
    return None


class Clock:
    """Turns a second's timestamp text into aware UTC, caching each distinct text.

    `fallback` is the zone for timestamps that carry none we can read (the `--tz` option);
    `unknown_zones` collects the abbreviations read that way, for the report's notes.
    """

    def __init__(self, fallback: dt.tzinfo = UTC) -> None:
        self.fallback = fallback
        self.unknown_zones: set[str] = set()
        self._cache: dict[bytes | str, dt.datetime | None] = {}
        self._minutes: dict[bytes, dt.datetime | None] = {}

    def second(self, text: bytes | str) -> dt.datetime | None:
        """`b"2026-11-25 14:45:28 UTC"` (no fraction), `b"2026-11-25 14:45:28"` or epoch
        `b"1764081928"` (or the same as `str`, from csvlog/jsonlog); None when it is no time."""
        cached = self._cache.get(text)
        if cached is None and text not in self._cache:
            cached = self._cache[text] = self._parse(text)
            if len(self._cache) > 10_000:
                self._cache.clear()
        return cached

    def _parse(self, raw: bytes | str) -> dt.datetime | None:
        """A second as the minute it is in (converted once per minute) plus its seconds: in
        a busy log each minute's text has 60 seconds, each read once."""
        try:
            text = raw.encode("ascii") if isinstance(raw, str) else raw
        except UnicodeError:
            return None
        seconds = text[17:19]
        if text[16:17] == b":" and seconds.isdigit() and int(seconds) < 60:
            minute_text = text[:17] + b"00" + text[19:]
            minute = self._minutes.get(minute_text)
            if minute is None and minute_text not in self._minutes:
                minute = self._minutes[minute_text] = self._parse_exactly(minute_text)
                if len(self._minutes) > 10_000:
                    self._minutes.clear()
            return None if minute is None else minute + dt.timedelta(seconds=int(seconds))
        return self._parse_exactly(text)

    def _parse_exactly(self, text: bytes) -> dt.datetime | None:
        try:
            if text.isdigit():
                return dt.datetime.fromtimestamp(int(text), UTC)
            stamp = text[:19].decode("ascii")
            naive = dt.datetime(
                int(stamp[0:4]),
                int(stamp[5:7]),
                int(stamp[8:10]),
                int(stamp[11:13]),
                int(stamp[14:16]),
                int(stamp[17:19]),
            )
        except (ValueError, UnicodeDecodeError, OverflowError, OSError):
            return None
        zone = text[20:].decode("ascii", "replace").strip()
        offset = zone_offset(zone) if zone else None
        if offset is None:
            if zone:
                self.unknown_zones.add(zone)
            return naive.replace(tzinfo=self.fallback).astimezone(UTC)
        return (naive - dt.timedelta(seconds=offset)).replace(tzinfo=UTC)


def second_of(stamp: str) -> str:
    """The grouping key of a csvlog/jsonlog `log_time` (`2026-11-25 14:45:28.265 UTC`): the
    stamp without its milliseconds."""
    return stamp[:19] + stamp[23:] if stamp[19:20] == "." else stamp
