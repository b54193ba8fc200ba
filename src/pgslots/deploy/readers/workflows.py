"""Images a GitHub Actions workflow builds and publishes, and the Dockerfile each comes from.

A compose file or manifest often runs `org/app:latest` with no `build:`: the repository does
build that image, but in CI. The usual workflow names it in `docker/metadata-action`'s
`images:` (one per line, `name=org/app,enable=...`, or string literals of an expression) or in `docker/build-push-action`'s
literal `tags:`, and names the Dockerfile in build-push's `file:` (else `context:`/Dockerfile).
`file: ${{ matrix.dockerfile }}` is resolved from the job's matrix. Read with the safe YAML
loader; nothing is run.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.yamlfile import line_of, load_file

_EXPRESSION = re.compile(r"\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}")
_LITERAL = re.compile(r"'([^']*)'")
_IMAGE = re.compile(r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9._-]+/[a-z0-9._/-]+$", re.I)


@dataclasses.dataclass(frozen=True)
class PublishedImage:
    name: str  # `org/app`, `ghcr.io/org/app` (no tag)
    dockerfile: str  # repository-relative path, `./` removed
    line: int  # where the workflow names the image


def published_images(repo: RepoFiles, rel: str) -> list[PublishedImage]:
    """Every image the workflow file `rel` builds, paired with its job's Dockerfile."""
    docs = load_file(repo, rel) or []
    workflow = docs[0] if docs and isinstance(docs[0], dict) else {}
    jobs = workflow.get("jobs")
    out: list[PublishedImage] = []
    for job in jobs.values() if isinstance(jobs, dict) else ():
        if isinstance(job, dict):
            out.extend(_job_images(job))
    return out


def _job_images(job: dict[str, Any]) -> list[PublishedImage]:
    steps = [s for s in job.get("steps") or () if isinstance(s, dict)]
    named: list[tuple[str, int]] = []
    dockerfiles: list[str] = []
    for step in steps:
        uses = str(step.get("uses") or "")
        given = _mapping(step.get("with"))
        if uses.startswith("docker/metadata-action"):
            named.extend(_names(given.get("images"), line_of(given, "images") or 0))
        elif uses.startswith("docker/build-push-action"):
            named.extend(_names(given.get("tags"), line_of(given, "tags") or 0))
            dockerfiles.extend(_dockerfiles(given, job))
    if not dockerfiles:
        return []
    dockerfile = "Dockerfile" if "Dockerfile" in dockerfiles else dockerfiles[0]
    return [PublishedImage(name, dockerfile, line) for name, line in named]


def _names(value: Any, line: int) -> list[tuple[str, int]]:
    """Image names of an `images:`/`tags:` value: lines or commas, `name=` form, tags cut."""
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    if not isinstance(value, str):
        return []
    out = []
    for offset, text in enumerate(value.splitlines()):
        # `${{ cond && 'org/app' || format(...) }}`: the expression's string literals.
        items = _LITERAL.findall(text) if "${{" in text else text.split(",")
        for item in items:
            word = item.strip()
            word = word.split("=", 1)[1] if word.startswith("name=") else word
            word = word.split("@", 1)[0]
            last = word.rsplit("/", 1)[-1]
            word = word[: len(word) - len(last)] + last.split(":", 1)[0]
            if "$" not in word and "=" not in word and _IMAGE.match(word):
                out.append((word.lower(), line + 1 + offset if "\n" in value else line))
    return out


def _dockerfiles(given: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """The Dockerfile(s) a build-push step builds: `file:`, matrix values expanded."""
    context = str(given.get("context") or ".").strip()
    file = given.get("file")
    written = [str(file)] if file else [context.rstrip("/") + "/Dockerfile"]
    return [
        re.sub(r"^(\./)+", "", value).replace("/./", "/")
        for text in written
        for value in _expand_matrix(text, job)
        if "$" not in value
    ]


def _expand_matrix(text: str, job: dict[str, Any]) -> list[str]:
    found = _EXPRESSION.search(text)
    if not found:
        return [text]
    matrix = _mapping(_mapping(job.get("strategy")).get("matrix"))
    key = found[1]
    listed = matrix.get(key)
    values = list(listed if isinstance(listed, list) else []) + [
        entry[key]
        for entry in matrix.get("include") or ()
        if isinstance(entry, dict) and key in entry
    ]
    return [text.replace(found[0], str(v)) for v in values if isinstance(v, str | int)]


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
