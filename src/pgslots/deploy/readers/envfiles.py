"""Env files (dotenv syntax) and the environment a process sees.

Which file is used matters: `.envs/.production/.django` is usually not committed, only its
`-example`; the audit reads the real file when it is there and says so when it falls back
to an example. Projects ship examples under many names (`.env.example`, `.env-dist`,
`.env.dist`, `.env.sample`, `env.template`) or in another folder that an install script
copies into place (`cp deploy/examples/app.env config/app.env`); all are found. Values may
refer to variables set earlier in the file (`DATABASE_URL=postgres://${POSTGRES_USER}@db/x`,
`${X:-default}`), as compose's env files do. Every value read is registered with the redactor when its name looks secret,
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
EXAMPLE_SUFFIXES = (
    "-example",
    ".example",
    "_example",
    ".sample",
    "-sample",
    "_sample",
    ".template",
    "-template",
    ".tmpl",
    ".dist",
    "-dist",
    "_dist",
    ".default",
    ".defaults",
    ".in",
)


@dataclasses.dataclass(frozen=True)
class EnvValue:
    """One variable: its value and where it was set."""

    name: str
    value: str
    evidence: Evidence
    template: str | None = (
        None  # a script's right-hand side before expansion (`--autoscale=${MAX},${MIN}`)
    )
    exported: bool = True  # False: a shell variable of a script (`X=1` without export), not in its children's environment
    formula: str | None = (
        None  # with UNKNOWN_VALUE: the value as a formula of the host's CPU count (`2 * cpus + 1`)
    )

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
        self.sources: tuple[
            str, ...
        ] = ()  # the env files it was read from, when that is worth saying

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
        return tuple(sorted((k, v.value) for k, v in self.values.items())) + (
            ("\x00complete", str(self.complete)),
        )


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


def parse_env_file(
    repo: RepoFiles, rel: str, resolution: Resolution = Resolution.ENV_FILE
) -> Env | None:
    """Read one dotenv file; None when it cannot be read. `$VAR` and `${VAR:-default}` in a
    value (not single-quoted) are expanded from the variables set above it, as compose does;
    one set nowhere stays written as `${VAR}`."""
    from pgslots.deploy.readers.commands import expand  # commands builds on this module's Env

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
        if "$" in value and not match["value"].strip().startswith("'"):
            expanded = expand(value, env, symbolic=True)
            value = expanded.value if expanded.value is not None else value
        REDACTOR.register_named(name, value)
        shown = f"{name}={redact_value(name, value)}"
        env.set(EnvValue(name, value, Evidence(rel, number, shown, resolution)))
    return env


def example_of(repo: RepoFiles, rel: str) -> str | None:
    """The committed example of an env file that is not in the repository, if any: beside it
    under an example name, or the file an install script copies into its place."""
    folder, _, name = rel.rpartition("/")
    stems = [name] + (
        [name[1:]] if name.startswith(".") and len(name) > 1 else []
    )  # `.env` -> `env.template`
    for stem in stems:
        for suffix in EXAMPLE_SUFFIXES:
            candidate = f"{folder}/{stem}{suffix}" if folder else f"{stem}{suffix}"
            if repo.has(candidate):
                return candidate
    for prefix in ("example", "sample", "template"):
        candidate = f"{folder}/{prefix}{name}" if folder else f"{prefix}{name}"  # `example.env`
        if name.startswith(".") and repo.has(candidate):
            return candidate
    return copied_into_place(repo).get(rel)


_COPY = re.compile(
    r"^\s*(?:sudo\s+)?(?:cp|install)\s+(?:-[A-Za-z]+\s+|--[a-z-]+\s+)*(?P<src>[^\s;&|]+)\s+(?P<dest>[^\s;&|]+)\s*(?:[;&|#].*)?$"
)


def copied_into_place(repo: RepoFiles) -> dict[str, str]:
    """Env files the project's install scripts create by copying a committed file
    (`cp deploy/examples/app.env config/app.env`): destination -> source, as repository
    paths relative to the script's folder (where such scripts are run from)."""
    cached = getattr(repo, "_copied_env", None)
    if cached is not None:
        return cached
    found: dict[str, str] = {}
    scripts = [
        p
        for p in repo.paths
        if p.endswith(".sh")
        or p.rsplit("/", 1)[-1] in ("Makefile", "install", "setup", "bootstrap")
    ]
    for script in scripts[:200]:
        folder = script.rpartition("/")[0]
        for line in repo.lines(script):
            match = _COPY.match(line.replace("\t", " ").lstrip("\t"))
            if not match:
                continue
            src, dest = (_repo_path(folder, match[key].strip("'\"")) for key in ("src", "dest"))
            if src and dest and repo.has(src) and is_env_file(dest) and src != dest:
                found.setdefault(dest, src)
    object.__setattr__(repo, "_copied_env", found)
    return found


def _repo_path(folder: str, word: str) -> str | None:
    if "$" in word or word.startswith(("/", "~")):
        return None
    parts = [p for p in folder.split("/") if p] if folder else []
    for piece in word.split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(piece)
    return "/".join(parts)


def resolve_env_file(repo: RepoFiles, rel: str) -> tuple[str | None, str]:
    """The file to read for `rel` and why: the real file, else its committed example."""
    if repo.has(rel):
        return rel, f"{rel} (as referenced)"
    example = example_of(repo, rel)
    if example and copied_into_place(repo).get(rel) == example:
        return (
            example,
            f"{example}: {rel} is not in the repository; the install script copies {example} into its place, so it was read",
        )
    if example:
        return (
            example,
            f"{example}: {rel} is not in the repository (usually git-ignored), so its example was read",
        )
    return None, f"{rel} is referenced but neither it nor an example of it is in the repository"


PRODUCTION_WORDS = ("production", "prod", "live", "deploy")
NON_PRODUCTION_WORDS = (
    "local",
    "dev",
    "test",
    "ci",
    "staging",
    "stage",
    "example-local",
    "docker-compose.override",
)


def is_env_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    if (
        name.startswith(".env")
        or name.endswith(".env")
        or re.fullmatch(r"env\.(example|sample|template|dist|tmpl)", name)
    ):
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
