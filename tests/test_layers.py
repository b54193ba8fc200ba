"""The package's layers, stated once and checked on every import statement (ast, nothing is
imported): a module may import its own layer and the layers below it, never one above.

    top (cli, the Django app)  >  report  >  use cases  >  rules and remedies  >  readers  >  models  >  base

A new module belongs to the layer of the first pattern that matches its dotted name.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Shared helpers with no project types: errors, evidence, redaction, JSON, signals.
    (
        "base",
        (
            "pgslots",
            "pgslots.errors",
            "pgslots.evidence",
            "pgslots.redact",
            "pgslots.serde",
            "pgslots.interrupts",
            "pgslots.schema",
            "pgslots.vocabulary",
        ),
    ),
    # Typed values and the numbers derived from them (budget: demand, usable slots), the
    # finding and remedy registries' types, the JSON envelope's shape.
    (
        "models",
        (
            "pgslots.*.model",
            "pgslots.diagnosis",
            "pgslots.findings",
            "pgslots.remedy",
            "pgslots.versions",
            "pgslots.envelope",
            "pgslots.deploy.budget",
            "pgslots.django.facts",
            "pgslots.diagnose.context",
        ),
    ),
    (
        "use cases",
        (
            "pgslots.audit",
            "pgslots.audit.*",
            "pgslots.events.pipeline",
            "pgslots.live.probe",
            "pgslots.live.watch",
            "pgslots.diagnose",
            "pgslots.diagnose.*",
            "pgslots.lab",
            "pgslots.lab.*",
            "pgslots.django.runtime_audit",
        ),
    ),
    # Files, logs, servers and the running Django project in; models out.
    (
        "readers",
        (
            "pgslots.deploy",
            "pgslots.deploy.*",
            "pgslots.events",
            "pgslots.events.*",
            "pgslots.live",
            "pgslots.live.*",
            "pgslots.django.read",
            "pgslots.django.dsn",
        ),
    ),
    ("rules", ("pgslots.rules", "pgslots.rules.*", "pgslots.remedies")),
    ("report", ("pgslots.report", "pgslots.report.*")),
    (
        "top",
        ("pgslots.cli", "pgslots.cli.*", "pgslots.__main__", "pgslots.django", "pgslots.django.*"),
    ),
)
"""(layer, patterns), matched in this order (the specific patterns come before the catch-alls
of their package, so `pgslots.diagnose.context` is a model and the rest of `diagnose` use cases)."""

ORDER = ("base", "models", "readers", "rules", "use cases", "report", "top")
"""The layers from the bottom up: a module may import its own layer and those to its left."""

EXCEPTIONS = {
    (
        "pgslots.deploy.budget",
        "pgslots.deploy.readers.cpus",
    ): "evaluate() is integer arithmetic over a Quantity's CPU formula; it belongs with the model "
    "once the deploy package's split settles (it lives beside the parser that writes the formula)",
}
"""Known upward imports, each with why it is still there. Do not add to it lightly."""


def layer_of(module: str) -> str:
    for layer, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`: annotations only, no run-time edge."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every pgslots import, lazy ones inside functions too;
    not those under `if TYPE_CHECKING:`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pgslots import versions` imports the module pgslots.versions
            names = [f"{base}.{a.name}" for a in node.names]
            out += [
                (
                    node.lineno,
                    n
                    if (SRC / Path(*n.split("."))).with_suffix(".py").exists()
                    or (SRC / Path(*n.split("."))).is_dir()
                    else base,
                )
                for n in names
            ]
    return [(line, name) for line, name in out if name == "pgslots" or name.startswith("pgslots.")]


def _sources() -> list[Path]:
    # the sample application the lab runs is a Django project of its own, not pgslots' code
    return [p for p in sorted((SRC / "pgslots").rglob("*.py")) if "sampleapp" not in p.parts]


def test_every_module_is_in_a_layer() -> None:
    for path in _sources():
        layer_of(_module_name(path))


def test_imports_run_one_way() -> None:
    wrong = []
    for path in _sources():
        module = _module_name(path)
        mine = ORDER.index(layer_of(module))
        for line, imported in _imports(path, module):
            theirs = layer_of(imported)
            if ORDER.index(theirs) > mine and (module, imported) not in EXCEPTIONS:
                wrong.append(
                    f"{path.relative_to(SRC)}:{line}: {module} ({layer_of(module)}) imports {imported} ({theirs})"
                )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_table_places_the_usual_modules() -> None:
    """The table says what DESIGN.md says: models below readers below use cases below report."""
    assert layer_of("pgslots.deploy.model") == "models"
    assert layer_of("pgslots.audit") == "use cases"
    assert layer_of("pgslots.deploy.readers.docker") == "readers"
    assert layer_of("pgslots.django.checks") == "top"
    assert ORDER.index(layer_of("pgslots.report.audit")) > ORDER.index(
        layer_of("pgslots.diagnosis")
    )
