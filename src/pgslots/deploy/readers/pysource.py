"""Parse a Python file of the audited project, whatever Python it was written for.

The audit runs on the Python it is installed with (3.11+), but projects move ahead of it:
Python 3.14 accepts `except A, B:` without parentheses (PEP 758), which `ast.parse` of an older
Python rejects, and a settings file with one such line would be lost entirely. When the first
parse fails, the lines written in that newer form are rewritten to the equivalent older one
(`except (A, B):`, same meaning, same line numbers) and parsed again; what was rewritten is
returned so the audit can say so. Anything else still raises SyntaxError.
"""

from __future__ import annotations

import ast
import re

_BARE_EXCEPT_TUPLE = re.compile(
    r"^(?P<head>\s*except\*?\s+)(?P<types>[^(:#\s][^:#]*?,[^:#]*?)(?P<tail>\s*:)"
)


def parse_source(text: str, filename: str = "<unknown>") -> tuple[ast.Module, list[int]]:
    """The module's tree, and the 1-based lines rewritten to parse it (empty when none were)."""
    try:
        return ast.parse(text, filename=filename), []
    except SyntaxError:
        lines = text.splitlines(keepends=True)
        rewritten = []
        for index, line in enumerate(lines):
            found = _BARE_EXCEPT_TUPLE.match(line)
            if found and " as " not in found["types"]:
                lines[index] = (
                    f"{found['head']}({found['types'].strip()}){found['tail']}"
                    + line[found.end() :]
                )
                rewritten.append(index + 1)
        if not rewritten:
            raise
        return ast.parse("".join(lines), filename=filename), rewritten
