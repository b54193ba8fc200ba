"""Where a number or a fact came from: `path:line`, the quoted text, and how it was resolved.

Every number pgslots shows can be traced back through one of these.
"""

from __future__ import annotations

import dataclasses
import enum


class Resolution(str, enum.Enum):
    """How a value was obtained, from most to least direct."""

    LITERAL = "literal"  # written as a constant in the file cited
    ENV_FILE = "env_file"  # taken from an env file (the line cited)
    ENV_DEFAULT = "env_default"  # the default of env(...)/os.environ.get(...) at the line cited
    COMMAND_FLAG = "command_flag"  # a command-line flag (gunicorn -w, celery -c, postgres -c ...)
    LIBRARY_DEFAULT = "library_default"  # nothing set it: the library's documented default
    ASSUMPTION = "assumption"  # supplied by the user with --assume NAME=VALUE
    OBSERVED = "observed"  # a row of an events file or a server log line
    LIVE = "live"  # read from a running server
    RUNTIME = "runtime"  # read from the running Django project's settings (manage.py pgslots)


@dataclasses.dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of proof. `path` is relative to what was read (the audited repo, the events
    file); `line` is 1-based, or None when the fact has no line (a library default)."""

    path: str
    line: int | None
    text: str
    resolution: Resolution = Resolution.LITERAL
    note: str = ""

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def __str__(self) -> str:
        return f"{self.location()}: {self.text}"
