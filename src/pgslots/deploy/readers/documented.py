"""Which deployment method a repository's own documentation says its maintainers run in production.

When a project ships several alternative recipes (a Helm chart, a compose example, a Scalingo
Procfile), the one its maintainers say they use in production is the deployment to audit:
"We use Kubernetes for our production instance but also support Docker Compose", "We are only
using the Kubernetes deployment method in production". The sentence must say *we* run it (not
"do not use it in production", not "should not be run in production"), and the method named
between the verb and "production" is the one kept.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import RepoFiles
from pgslots.evidence import Evidence, Resolution

DOC_FILES = re.compile(
    r"^(README|INSTALL|DEPLOY)[^/]*\.(md|rst)$|^(docs?|documentation)/(.+/)?[^/]+\.(md|rst)$", re.I
)
_STATEMENT = re.compile(
    r"\b(?:we|our(?:\s+\w+)?)\b[^.]{0,60}?\b(?:use|uses|using|run|runs|running|deploy|deploying)\b"
    r"(?P<method>[^.]{0,80}?)\bproduction\b",
    re.I,
)
_NEGATION = re.compile(r"\b(not|never|nor|no longer)\b|n't\b", re.I)
METHODS = {
    "kubernetes": re.compile(r"\b(kubernetes|k8s|helm)\b", re.I),
    "compose": re.compile(r"\bdocker[- ]compose\b|\bcompose\b", re.I),
    "procfile": re.compile(r"\b(scalingo|heroku|dokku)\b", re.I),
}


@dataclasses.dataclass(frozen=True)
class Documented:
    method: str  # a key of METHODS
    evidence: Evidence


def documented_production(repo: RepoFiles) -> Documented | None:
    """The deployment method the documentation says the maintainers run in production, if one
    (and only one) is named that way."""
    found: list[Documented] = []
    for rel in sorted(repo.paths):
        if not DOC_FILES.search(rel) or "/examples/" in f"/{rel}":
            continue
        text = repo.text_uncached(rel) or ""
        if "production" not in text.lower():
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                match = _STATEMENT.search(sentence)
                if not match or _NEGATION.search(sentence[: match.end()]):
                    continue
                methods = [m for m, words in METHODS.items() if words.search(match["method"])]
                if len(methods) == 1:
                    found.append(
                        Documented(
                            methods[0],
                            Evidence(rel, number, sentence.strip()[:120], Resolution.LITERAL),
                        )
                    )
    if len({d.method for d in found}) != 1:
        return None
    return found[0]
