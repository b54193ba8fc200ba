"""YAML with line numbers, through the safe loader only.

`yaml.safe_load` forgets where things were; the budget must cite `file:line`. `LineLoader`
is the safe loader (libyaml's when available) whose mappings remember the line of each key,
so `lines_of(mapping)[key]` gives the 1-based line. Nothing but plain data is constructed.
"""

from __future__ import annotations

from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A mapping that knows the line of each of its keys (and of itself)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineLoader(_Base):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        self.flatten_mapping(node)
        mapping = LineDict()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue
            mapping[key] = self.construct_object(value_node, deep=deep)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping


LineLoader.add_constructor("tag:yaml.org,2002:map", LineLoader.construct_mapping)


def load_all(text: str) -> list[Any]:
    """Every document of a (multi-document) YAML text. Raises yaml.YAMLError when invalid."""
    return [doc for doc in yaml.load_all(text, Loader=LineLoader) if doc is not None]


def load_file(repo: Any, rel: str, skip_templates: bool = False) -> list[Any] | None:
    """The documents of a repository YAML file; None (with a read error recorded) when it is
    unreadable or invalid. With `skip_templates`, Go templates (Helm `templates/`) are skipped."""
    text = repo.text(rel)
    if text is None or (skip_templates and "{{" in text):
        return None
    try:
        return load_all(text)
    except yaml.YAMLError as exc:
        line, why = yaml_error(exc)
        repo.broken(rel, line, why)
        return None


def line_of(mapping: Any, key: Any) -> int | None:
    if isinstance(mapping, LineDict):
        return mapping.key_lines.get(key, mapping.line or None)
    return None


def yaml_error(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return line, f"invalid YAML: {problem}"
