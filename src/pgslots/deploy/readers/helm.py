"""Helm charts as they are written: `Chart.yaml`, Go-templated `templates/`, `values*.yaml`.

pgslots does not render Go templates (it would need the chart's helpers, the release's values
and Helm itself), so a chart whose workload templates are templated is an unknown unit: one
unknown group named after `Chart.yaml`'s `name`, never silently left out. What the values files
say is still read and cited, so the reader of the report can size the group by hand (and pass it
with `--assume`): replica counts (`replicaCount`, per-component `replicas`), autoscaling maxima,
concurrency variables in `env` (WEB_CONCURRENCY, GUNICORN_WORKERS, CELERY_CONCURRENCY, ...),
the image, and a command or args given in the values.

Values are layered as `helm upgrade -f values.yaml -f values-production.yaml` would: the
chart's `values.yaml`, then the one values file named for production (`values-prod.yaml`,
`values.production.yaml`, `prod-values.yaml`...); the other environments' files are alternatives.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.yamlfile import line_of, load_file
from pgslots.evidence import Evidence
from pgslots.redact import redact_value

WORKLOAD_KINDS = re.compile(
    r"^\s*kind:\s*[\"']?(Deployment|StatefulSet|DaemonSet|Rollout|DeploymentConfig)\b", re.M
)
PRODUCTION_VALUES = re.compile(r"(^|[-_.])(prod|production|live|prd)([-_.]|$)", re.I)
CONCURRENCY_ENV = re.compile(r"CONCURRENCY|WORKERS|THREADS|PROCESSES|CONN_MAX_AGE|POOL", re.I)
COUNT_KEYS = ("replicaCount", "replicas")


@dataclasses.dataclass(frozen=True)
class ValueFact:
    """One value of the chart's values that bears on its connection count."""

    key: str  # the dotted path in the values: `api.replicaCount`, `celery.env.CELERY_CONCURRENCY`
    value: str
    evidence: Evidence


@dataclasses.dataclass
class HelmChart:
    name: str
    folder: str
    chart: Evidence  # Chart.yaml's `name:`
    templated: list[Evidence]  # workload templates with Go template syntax (`replicas: {{ ... }}`)
    values: list[str]  # the values files layered for production, in order
    alternatives: list[str]  # the other environments' values files
    facts: list[ValueFact]
    kind: str = "Helm chart"  # or "Arnold tray" (Jinja templates Ansible renders)
    language: str = "Go"  # the template language of its workloads


def is_values_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and "values" in name.lower()


def read_charts(repo: RepoFiles, skip: re.Pattern[str], notes: list[str]) -> list[HelmChart]:
    """Every chart in the tree whose workload templates are Go templates, except subcharts
    (`charts/` of another chart: a database, a cache), charts under `skip` (tests, examples) and
    charts whose every workload runs a fixed image (a chart of the project's own image makes the
    image a value, so releases can set its tag; fixed images are the database, cache, vault...)."""
    out = []
    for rel in repo.named("Chart.yaml"):
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if skip.search(rel):
            continue
        if "/charts/" in f"/{folder}/" and any(
            repo.has(join(parent, "Chart.yaml")) for parent in _parents_before_charts(folder)
        ):
            continue  # a subchart (bitnami postgresql, redis): another application
        templated = _templated_workloads(repo, folder)
        if not templated:
            continue  # plain manifests: read as Kubernetes objects
        fixed = [_fixed_images(repo, e.path) for e in templated]
        if all(fixed):
            images = sorted({image for found in fixed for image in found})
            notes.append(
                f"Helm chart {folder}: every workload runs a fixed image ({', '.join(images[:5])}"
                f"{' ...' if len(images) > 5 else ''}), not the project's (whose chart sets its image from values): no group"
            )
            continue
        docs = load_file(repo, rel) or []
        meta = docs[0] if docs and isinstance(docs[0], dict) else {}
        name = str(meta.get("name") or folder.rsplit("/", 1)[-1] or "chart")
        values, alternatives = _values_files(repo, folder)
        facts: dict[str, ValueFact] = {}
        for path in values:  # later files override earlier ones, as `helm -f a -f b`
            for doc in load_file(repo, path) or []:
                for fact in _facts(path, doc, ""):
                    facts[fact.key] = fact
        out.append(
            HelmChart(
                name,
                folder,
                Evidence(rel, line_of(meta, "name"), f"name: {name}"),
                templated,
                values,
                alternatives,
                list(facts.values()),
            )
        )
    return out


def read_trays(repo: RepoFiles, skip: re.Pattern[str]) -> list[HelmChart]:
    """Arnold trays (`tray.yml` beside `templates/services/*/*.yml.j2`, named by arnold.yml's
    `source.path`): Kubernetes manifests written as Jinja templates that Ansible renders with the
    tray's `vars/`. Not rendered here: each tray is one unknown group, as an unrendered chart."""
    out = []
    for rel in repo.named("tray.yml"):
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if skip.search(rel):
            continue
        prefix = join(folder, "templates") + "/"
        templated = []
        for path in repo.paths:
            if path.startswith(prefix) and path.endswith((".yml.j2", ".yaml.j2")):
                text = repo.text(path) or ""
                match = WORKLOAD_KINDS.search(text)
                if match and ("{{" in text or "{%" in text):
                    line = text.count("\n", 0, match.start()) + 1
                    templated.append(Evidence(path, line, f"kind: {match[1]} (a Jinja template)"))
        if not templated:
            continue
        docs = load_file(repo, rel) or []
        meta = docs[0].get("metadata") if docs and isinstance(docs[0], dict) else None
        meta = meta if isinstance(meta, dict) else {}
        name = str(meta.get("name") or folder.rsplit("/", 1)[-1] or "tray")
        evidence = Evidence(rel, line_of(meta, "name"), f"name: {name}")
        out.append(HelmChart(name, folder, evidence, templated, [], [], [], "Arnold tray", "Jinja"))
    return out


def _parents_before_charts(folder: str) -> list[str]:
    parts = folder.split("/")
    return ["/".join(parts[:i]) for i, part in enumerate(parts) if part == "charts"]


def _templated_workloads(repo: RepoFiles, folder: str) -> list[Evidence]:
    prefix = join(folder, "templates") + "/"
    found = []
    for rel in repo.paths:
        if not rel.startswith(prefix) or not rel.endswith((".yaml", ".yml", ".tpl")):
            continue
        text = repo.text(rel) or ""
        match = WORKLOAD_KINDS.search(text)
        if match and "{{" in text:
            line = text.count("\n", 0, match.start()) + 1
            found.append(Evidence(rel, line, f"kind: {match[1]} (a Go template)"))
    return found


IMAGE_LINE = re.compile(r"^\s*-?\s*image:\s*(\S.*)$", re.M)


def _fixed_images(repo: RepoFiles, rel: str) -> list[str]:
    """The images a workload template names literally; empty when any image comes from values."""
    images = [m[1].strip().strip("\"'") for m in IMAGE_LINE.finditer(repo.text(rel) or "")]
    return [] if not images or any("{{" in image for image in images) else images


def _values_files(repo: RepoFiles, folder: str) -> tuple[list[str], list[str]]:
    """(the files layered for production, the other environments' files)."""
    prefix = folder + "/" if folder else ""
    mine = sorted(
        rel
        for rel in repo.paths
        if rel.startswith(prefix)
        and "/" not in rel[len(prefix) :].replace("values/", "", 1)
        and is_values_file(rel.rsplit("/", 1)[-1])
        and not rel.startswith(prefix + "templates/")
    )
    base = [rel for rel in mine if rel.rsplit("/", 1)[-1] in ("values.yaml", "values.yml")]
    others = [rel for rel in mine if rel not in base]
    production = sorted(
        (
            rel
            for rel in others
            if PRODUCTION_VALUES.search(rel.rsplit("/", 1)[-1].rsplit(".", 1)[0])
        ),
        key=len,
    )[:1]
    return base + production, [rel for rel in others if rel not in production]


def _facts(path: str, node: Any, prefix: str) -> list[ValueFact]:
    """The values that size a workload, walked through nested components (`api:`, `celery:`)."""
    out: list[ValueFact] = []
    if not isinstance(node, dict):
        return out
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        where = Evidence(path, line_of(node, key), "")
        if key in COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
            out.append(
                ValueFact(dotted, str(value), dataclasses.replace(where, text=f"{key}: {value}"))
            )
        elif key == "autoscaling" and isinstance(value, dict):
            if value.get("enabled") and isinstance(value.get("maxReplicas"), int):
                out.append(
                    ValueFact(
                        f"{dotted}.maxReplicas",
                        str(value["maxReplicas"]),
                        Evidence(
                            path,
                            line_of(value, "maxReplicas"),
                            f"maxReplicas: {value['maxReplicas']}",
                        ),
                    )
                )
        elif key in ("command", "args") and isinstance(value, (list, str)) and value:
            text = " ".join(str(w) for w in value) if isinstance(value, list) else value
            text = (text.strip().splitlines() or [""])[0]
            out.append(
                ValueFact(dotted, text[:80], dataclasses.replace(where, text=f"{key}: {text[:80]}"))
            )
        elif key == "image" and (
            isinstance(value, str) or (isinstance(value, dict) and value.get("repository"))
        ):
            image = (
                value
                if isinstance(value, str)
                else f"{value.get('repository')}" + (f":{value['tag']}" if value.get("tag") else "")
            )
            out.append(ValueFact(dotted, image, dataclasses.replace(where, text=f"image: {image}")))
        elif key in ("env", "extraEnv", "environment", "envVars") and isinstance(
            value, (dict, list)
        ):
            out.extend(_env_facts(path, value, dotted))
        elif isinstance(value, dict) and value.get("enabled") is False:
            continue  # a component (or subchart) switched off
        else:
            out.extend(_facts(path, value, dotted))
    return out


def _env_facts(path: str, env: Any, prefix: str) -> list[ValueFact]:
    pairs: list[tuple[str, Any, int | None]] = []
    if isinstance(env, dict):
        pairs = [(str(k), v, line_of(env, k)) for k, v in env.items()]
    else:
        pairs = [
            (str(e["name"]), e.get("value"), line_of(e, "value"))
            for e in env
            if isinstance(e, dict) and "name" in e
        ]
    return [
        ValueFact(
            f"{prefix}.{name}",
            redact_value(name, str(value)),
            Evidence(path, line, f"{name}: {redact_value(name, str(value))}"),
        )
        for name, value, line in pairs
        if CONCURRENCY_ENV.search(name)
        and isinstance(value, (str, int))
        and not isinstance(value, bool)
    ]
