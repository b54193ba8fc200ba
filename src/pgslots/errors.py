"""The one exception type that means "the user's input is wrong".

The CLI turns an `InputError` into a single line on stderr and exit code 2: which file,
which line, what was expected. Anything else that escapes is a bug in pgslots.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a file we cannot read, a value we cannot parse, an option that makes no sense."""

    def __init__(self, what: str, *, path: str | None = None, line: int | None = None) -> None:
        self.what = what
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.path and self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.what}" if where else self.what
