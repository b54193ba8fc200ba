"""YAML with line numbers, through the safe loader only.

`yaml.safe_load` forgets where things were; the budget must cite `file:line`. `LineLoader`
is the safe loader (libyaml's when available) whose mappings remember the line of each key,
so `lines_of(mapping)[key]` gives the 1-based line. Nothing but plain data is constructed.

Deployment YAML is often written for a tool that fills values in at deploy time: CloudFormation's
`!Ref`/`!Sub`, Ansible's `!vault`, `!include`, `!reference` in GitLab CI. The safe loader refuses
such a tag and the whole file would be lost; here a tagged node is read as the plain scalar,
list or mapping it is written as, and the tag is recorded (`LineLoader.tags`, with its line) so
the audit can say which values are filled in elsewhere.
"""

from __future__ import annotations

from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A mapping that knows the line of each of its keys (and of itself)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineLoader(_Base):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.tags: list[tuple[str, int, str]] = []  # (tag, 1-based line, the value as written)

    def construct_tagged(self, suffix: str, node: yaml.Node) -> Any:
        """A node with a tag the safe loader does not know: its plain value, the tag remembered."""
        if isinstance(node, yaml.MappingNode):
            value: Any = self.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = self.construct_sequence(node, deep=True)
        else:
            value = self.construct_scalar(node)
        written = value if isinstance(value, str) else ""
        self.tags.append(
            (
                node.tag,
                node.start_mark.line + 1,
                written.strip().splitlines()[0][:60] if written.strip() else "",
            )
        )
        return value

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
LineLoader.add_multi_constructor("!", LineLoader.construct_tagged)


def load_all(text: str, tags: list[tuple[str, int, str]] | None = None) -> list[Any]:
    """Every document of a (multi-document) YAML text; custom tags go to `tags` when given.
    Raises yaml.YAMLError when invalid."""
    loader = LineLoader(text)
    try:
        docs = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    if tags is not None:
        tags.extend(loader.tags)
    return docs


def load_file(repo: Any, rel: str, skip_templates: bool = False) -> list[Any] | None:
    """The documents of a repository YAML file; None (with a read error recorded) when it is
    unreadable or invalid. With `skip_templates`, Go templates (Helm `templates/`) are skipped.
    Custom tags are recorded on the repository (`repo.yaml_tags`) with their file and line."""
    text = repo.text(rel)
    if text is None or (skip_templates and "{{" in text):
        return None
    tags: list[tuple[str, int, str]] = []
    try:
        docs = load_all(text, tags)
        record = getattr(repo, "yaml_tag", None)
        for tag, line, written in tags:
            if record is not None:
                record(rel, line, tag, written)
        return docs
    except yaml.YAMLError as exc:
        at, why = yaml_error(exc)
        repo.broken(rel, at, why)
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
