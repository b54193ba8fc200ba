"""Env files (dotenv syntax) and the environment a process sees.

Which file is used matters: `.envs/.production/.django` is usually not committed, only its
`-example`; the audit reads the real file when it is there and says so when it falls back
to an example. Every value read is registered with the redactor when its name looks secret,
so it can never reach the output, whatever renders it later.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import RepoFiles
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value

_LINE = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<value>.*?)\s*$")
UNKNOWN_VALUE = "\x00unknown"
"""The value of a variable that is set to something only the running host knows (`$(nproc)`)."""
MISSING_ENV = "\x00missing-env-files"
"""Set in an environment whose env files are referenced but not in the repository: a
variable absent from it may still be set in production."""
EXAMPLE_SUFFIXES = ("-example", ".example", "_example", ".sample", "-sample", ".template", ".dist", ".tmpl")


@dataclasses.dataclass(frozen=True)
class EnvValue:
    """One variable: its value and where it was set."""

    name: str
    value: str
    evidence: Evidence
    template: str | None = None  # a script's right-hand side before expansion (`--autoscale=${MAX},${MIN}`)
    exported: bool = True  # False: a shell variable of a script (`X=1` without export), not in its children's environment

    @property
    def shown(self) -> str:
        return redact_value(self.name, self.value)


class Env:
    """An environment built in layers; later layers override earlier ones (as docker does).

    `complete` says the repository defines the whole environment of the process (a compose
    service whose env files are all committed): a variable set nowhere is then really
    unset, and `os.getenv("X")` is None rather than unknown."""

    def __init__(self, values: dict[str, EnvValue] | None = None, complete: bool = False) -> None:
        self.values: dict[str, EnvValue] = dict(values or {})
        self.complete = complete and MISSING_ENV not in self.values
        self.sources: tuple[str, ...] = ()  # the env files it was read from, when that is worth saying

    def get(self, name: str) -> EnvValue | None:
        return self.values.get(name)

    def value(self, name: str) -> str | None:
        found = self.values.get(name)
        return found.value if found else None

    def exported(self, name: str) -> EnvValue | None:
        """The variable as a program started by the script sees it (not a shell-only variable)."""
        found = self.values.get(name)
        return found if found is not None and found.exported else None

    def process(self) -> Env:
        """The environment a program started by the script gets: its exported variables."""
        if all(v.exported for v in self.values.values()):
            return self
        env = Env({k: v for k, v in self.values.items() if v.exported}, self.complete)
        env.sources = self.sources
        return env

    def overlay(self, other: Env | dict[str, EnvValue]) -> Env:
        values = dict(self.values)
        values.update(other.values if isinstance(other, Env) else other)
        return Env(values, self.complete)

    def completed(self) -> Env:
        """The same variables, known to be the process's whole environment."""
        return Env(self.values, complete=True)

    def set(self, item: EnvValue) -> None:
        self.values[item.name] = item
        if item.name == MISSING_ENV:
            self.complete = False

    def key(self) -> tuple[tuple[str, str], ...]:
        """A hashable view, to evaluate the settings once per distinct environment."""
        return tuple(sorted((k, v.value) for k, v in self.values.items())) + (("\x00complete", str(self.complete)),)


def unquote(raw: str) -> str:
    """A dotenv value without its quotes and trailing comment."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while end > 0 and quote == '"' and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end > 0:
            inner = raw[1:end]
            return inner.replace('\\"', '"') if quote == '"' else inner
        return raw[1:]
    # An unquoted value ends at " #": `CELERY_RESULT_BACKEND=rpc:// # comment`.
    hash_at = re.search(r"\s#", raw)
    return raw[: hash_at.start()].rstrip() if hash_at else raw


def parse_env_file(repo: RepoFiles, rel: str, resolution: Resolution = Resolution.ENV_FILE) -> Env | None:
    """Read one dotenv file; None when it cannot be read."""
    text = repo.text(rel)
    if text is None:
        return None
    env = Env()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        name, value = match["name"], unquote(match["value"])
        REDACTOR.register_named(name, value)
        shown = f"{name}={redact_value(name, value)}"
        env.set(EnvValue(name, value, Evidence(rel, number, shown, resolution)))
    return env


def example_of(repo: RepoFiles, rel: str) -> str | None:
    """The committed example of an env file that is not in the repository, if any."""
    for suffix in EXAMPLE_SUFFIXES:
        if repo.has(rel + suffix):
            return rel + suffix
    return None


def resolve_env_file(repo: RepoFiles, rel: str) -> tuple[str | None, str]:
    """The file to read for `rel` and why: the real file, else its committed example."""
    if repo.has(rel):
        return rel, f"{rel} (as referenced)"
    example = example_of(repo, rel)
    if example:
        return example, f"{example}: {rel} is not in the repository (usually git-ignored), so its example was read"
    return None, f"{rel} is referenced but neither it nor an example of it is in the repository"


PRODUCTION_WORDS = ("production", "prod", "live", "deploy")
NON_PRODUCTION_WORDS = ("local", "dev", "test", "ci", "staging", "stage", "example-local", "docker-compose.override")


def is_env_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    if name.startswith(".env") or name.endswith(".env"):
        return True
    return "/.envs/" in f"/{folder}/" or folder.startswith(".envs")


def production_score(path: str) -> int:
    """Higher for files that describe production; negative for local/test ones."""
    low = path.lower()
    words = re.split(r"[^a-z]+", low)
    score = 0
    if any(w in words for w in PRODUCTION_WORDS):
        score += 10
    if any(w in words for w in ("local", "dev", "development", "test", "tests", "ci")):
        score -= 10
    if any(w in words for w in ("staging", "stage", "preview")):
        score -= 3
    return score
