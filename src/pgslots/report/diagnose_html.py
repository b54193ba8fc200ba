"""`diagnose --format html`: one self-contained file, with charts, that opens offline.

Self-contained means: styles inline, charts inline SVG (see `charts`), no script, no web
font, no image or link fetched from anywhere. The page follows the reader's colour scheme
(`prefers-color-scheme`) and prints cleanly (`@media print`); chart text and axes use
`currentColor`, so they follow both.
"""

from __future__ import annotations

import functools
import html
import re

import jinja2
from markupsafe import Markup

from pgslots import __version__
from pgslots.diagnosis import Diagnosis
from pgslots.report import charts
from pgslots.report.diagnose_outline import Bullets, Checklist, Figure, Paragraph, Table, build

_CODE = re.compile(r"`([^`]*)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")


def inline(text: str) -> Markup:
    """The outline's inline marks (`code`, **bold**, *italic*) as HTML, everything escaped."""
    parts = _CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            escaped = html.escape(part)
            escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
            out.append(_ITALIC.sub(r"<em>\1</em>", escaped))
    return Markup("".join(out))


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pgslots.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["inline"] = inline
    return env.get_template("diagnose.html.j2")


def render_charts(diagnosis: Diagnosis) -> dict[str, charts.Chart]:
    drawn = [
        charts.errors_over_time(diagnosis.incident),
        charts.backends_over_time(diagnosis.backends, diagnosis.capacity),
        charts.budget_per_group(diagnosis.budget, diagnosis.capacity),
        charts.remedy_comparison(diagnosis.remedies, diagnosis.capacity, diagnosis.lab),
    ]
    return {c.key: c for c in drawn if c is not None}


def render(diagnosis: Diagnosis) -> str:
    outline = build(diagnosis)
    return _template().render(
        outline=outline,
        charts=render_charts(diagnosis),
        version=__version__,
        generated_at=diagnosis.generated_at,
        kinds={
            "Paragraph": Paragraph,
            "Bullets": Bullets,
            "Checklist": Checklist,
            "Table": Table,
            "Figure": Figure,
        },
        Markup=Markup,
    )
