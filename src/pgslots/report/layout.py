"""Fit rendered text to the terminal's width.

The text renderers lay out for a wide page; this is the one place that folds their output to
the width the user has (`COLUMNS`, else the terminal's, see `pgslots.cli.text_width`):

- a table (a header line, then a line of dashes under each column) wider than the page is
  shown as one record per row: the first cell, then `header: value` lines, indented;
- any other long line is wrapped at spaces, its continuation indented under its first word;
- a single word that cannot fit (a long path) is shortened in the middle with `...`, so that
  no line overflows: its start and its end (the file name and line) are what identify it.
"""

from __future__ import annotations

import re
import textwrap

_DASHES = re.compile(r"^-+(  +-+)+\s*$")
CONTINUATION = 4  # extra indent of a wrapped line's continuation
MIN_WIDTH = 40


def fit(text: str, width: int | None) -> str:
    """`text` with no line longer than `width` (unchanged when width is None)."""
    if width is None:
        return text
    width = max(width, MIN_WIDTH)
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index + 1 < len(lines) and _DASHES.match(lines[index + 1]):
            end = _table_end(lines, index + 2)
            block = lines[index:end]
            if max(len(line) for line in block) > width:
                out += _records(block, width)
            else:
                out += block
            index = end
            continue
        out += _wrap(lines[index], width)
        index += 1
    return "\n".join(out)


def _table_end(lines: list[str], start: int) -> int:
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return end


def _columns(dashes: str) -> list[tuple[int, int | None]]:
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    return [
        (start, spans[i + 1][0] if i + 1 < len(spans) else None)
        for i, (start, _) in enumerate(spans)
    ]


def _cells(line: str, columns: list[tuple[int, int | None]]) -> list[str]:
    return [line[start:end].strip() for start, end in columns]


def _records(block: list[str], width: int) -> list[str]:
    """header / dashes / rows -> one record per row: the first cell, then `header: value`."""
    columns = _columns(block[1])
    headers = _cells(block[0], columns)
    out: list[str] = []
    for row in block[2:]:
        cells = _cells(row, columns)
        out += _wrap(cells[0], width)
        for header, cell in zip(headers[1:], cells[1:], strict=False):
            if cell:
                out += _wrap(f"    {header}: {cell}", width)
    return out


def _wrap(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    words = [_shorten(w, width - len(indent) - CONTINUATION) for w in line.split()]
    return textwrap.wrap(
        " ".join(words),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + " " * CONTINUATION,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _shorten(word: str, room: int) -> str:
    if len(word) <= room:
        return word
    keep = max(room - 3, 2)
    head = keep // 2
    return word[:head] + "..." + word[len(word) - (keep - head) :]
