"""The base of the project's enums: a term that is also its own string.

The vocabulary (group kinds, concurrency models, transaction kinds, mechanisms) is typed,
but much of it is compared with, printed into and read back from text (JSON, YAML oracles,
`--assume` names, f-strings). A `Term` equals, hashes, prints and formats as its value, so
`GroupKind.WEB == "web"`, `{"web": 1}[GroupKind.WEB]` and `f"{GroupKind.WEB}"` all work,
on Python 3.10 as on 3.12 (whose `str` mix-in enums print as `GroupKind.WEB`).
"""

from __future__ import annotations

import enum


class Term(str, enum.Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    __hash__ = str.__hash__
