"""Kubernetes manifests and plain-YAML Helm values.

Deployments, StatefulSets and DaemonSets give containers (command, args, env, envFrom) and
replicas; a HorizontalPodAutoscaler (or a KEDA ScaledObject) targeting one gives the
replica range, whose maximum is the worst case. ConfigMaps referenced by `envFrom` supply
environment. Helm charts' `templates/` are Go templates, not YAML, and are not parsed;
their `values*.yaml` are, for `replicaCount` and `autoscaling`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.envfiles import Env, EnvValue
from pgslots.deploy.readers.kustomize import Plan, patch_workloads
from pgslots.deploy.readers.yamlfile import line_of, load_file
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "DeploymentConfig", "Rollout"}


@dataclasses.dataclass
class Container:
    workload: str
    kind: str
    name: str
    image: str | None
    argv: list[str] | None
    path: str
    line: int | None
    env: Env
    config_maps: list[str]
    replicas: int | None
    replicas_line: int | None
    command: list[str] = dataclasses.field(
        default_factory=list
    )  # as written, for a patch that replaces one of them
    args: list[str] = dataclasses.field(default_factory=list)
    replicas_path: str = ""  # where replicas were set, when not in `path` (a kustomize overlay)
    replicas_written: str = (
        ""  # `replicas: !Ref WorkerReplicas`, `{{ .Values.x }}`: set elsewhere, unknown here
    )


@dataclasses.dataclass
class Autoscaler:
    target: str
    min_replicas: int | None
    max_replicas: int | None
    path: str
    line: int | None


@dataclasses.dataclass
class Manifests:
    containers: list[Container] = dataclasses.field(default_factory=list)
    autoscalers: list[Autoscaler] = dataclasses.field(default_factory=list)
    config_maps: dict[str, Env] = dataclasses.field(default_factory=dict)
    helm_values: list[tuple[str, str, Any, int | None]] = dataclasses.field(
        default_factory=list
    )  # (path, key, value, line)
    other_kinds: list[tuple[str, str, Any]] = dataclasses.field(
        default_factory=list
    )  # (path, kind, doc)


def looks_like_manifest(text: str) -> bool:
    return "apiVersion" in text and "kind:" in text


def looks_like_helm_values(path: str, text: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("values") and ("replicaCount" in text or "autoscaling" in text)


def read_manifests(repo: RepoFiles, rel: str, into: Manifests) -> None:
    for doc in load_file(repo, rel, skip_templates=True) or []:
        for item in (
            (doc.get("items") or [])
            if isinstance(doc, dict) and doc.get("kind") == "List"
            else [doc]
        ):
            if isinstance(item, dict):
                _document(rel, item, into)


def _document(rel: str, doc: dict, into: Manifests) -> None:
    kind = str(doc.get("kind", ""))
    meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    name = str(meta.get("name", "?"))
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    if kind in WORKLOADS:
        pod = (
            ((spec.get("template") or {}).get("spec") or {})
            if isinstance(spec.get("template"), dict)
            else {}
        )
        replicas = spec.get("replicas")
        for container in pod.get("containers") or []:
            if not isinstance(container, dict):
                continue
            argv = None
            if container.get("command") or container.get("args"):
                argv = [str(w) for w in (container.get("command") or [])] + [
                    str(w) for w in (container.get("args") or [])
                ]
            env = container_env(rel, container)
            config_maps = [
                str(source["configMapRef"].get("name"))
                for source in container.get("envFrom") or []
                if isinstance(source, dict) and isinstance(source.get("configMapRef"), dict)
            ]
            into.containers.append(
                Container(
                    workload=name,
                    kind=kind,
                    name=str(container.get("name", name)),
                    image=container.get("image"),
                    argv=argv,
                    path=rel,
                    line=line_of(container, "args")
                    or line_of(container, "command")
                    or container.line
                    if hasattr(container, "line")
                    else None,
                    env=env,
                    config_maps=config_maps,
                    replicas=replicas if isinstance(replicas, int) else None,
                    replicas_line=line_of(spec, "replicas"),
                    replicas_written=""
                    if replicas is None or isinstance(replicas, int)
                    else str(replicas),
                    command=[str(w) for w in container.get("command") or []],
                    args=[str(w) for w in container.get("args") or []],
                )
            )
    elif kind == "HorizontalPodAutoscaler":
        target = (spec.get("scaleTargetRef") or {}).get("name")
        into.autoscalers.append(
            Autoscaler(
                str(target),
                _int(spec.get("minReplicas")),
                _int(spec.get("maxReplicas")),
                rel,
                line_of(spec, "maxReplicas"),
            )
        )
    elif kind == "ScaledObject":
        target = (spec.get("scaleTargetRef") or {}).get("name")
        into.autoscalers.append(
            Autoscaler(
                str(target),
                _int(spec.get("minReplicaCount")),
                _int(spec.get("maxReplicaCount")),
                rel,
                line_of(spec, "maxReplicaCount"),
            )
        )
    elif kind == "ConfigMap":
        env = Env()
        data: dict[str, Any] = doc["data"] if isinstance(doc.get("data"), dict) else {}
        for key, value in data.items():
            REDACTOR.register_named(str(key), str(value))
            env.set(
                EnvValue(
                    str(key),
                    str(value),
                    Evidence(
                        rel,
                        line_of(data, key),
                        f"{key}: {redact_value(str(key), str(value))}",
                        Resolution.ENV_FILE,
                    ),
                )
            )
        into.config_maps[name] = env
    elif kind:
        into.other_kinds.append((rel, kind, doc))


def container_env(rel: str, container: dict) -> Env:
    """A container's literal `env:` entries, each with its line."""
    env = Env()
    raw_env = container.get("env") or []
    for entry in raw_env if isinstance(raw_env, list) else []:
        if isinstance(entry, dict) and "name" in entry and "value" in entry:
            key, value = str(entry["name"]), str(entry["value"])
            REDACTOR.register_named(key, value)
            env.set(
                EnvValue(
                    key,
                    value,
                    Evidence(
                        rel,
                        line_of(entry, "value"),
                        f"{key}: {redact_value(key, value)}",
                        Resolution.LITERAL,
                    ),
                )
            )
    return env


def apply_overlay(repo: RepoFiles, plan: Plan, into: Manifests) -> list[str]:
    """The chosen kustomize overlay's patches (replicas, a container's command, args and env)
    and `replicas:` entries applied to the workloads of its bases, as kustomize would."""
    notes = []
    for rel in plan.patches:
        for name, spec, containers in patch_workloads(repo, rel):
            targets = [c for c in into.containers if c.workload == name]
            if not targets:
                continue
            if isinstance(spec.get("replicas"), int):
                for target in targets:
                    target.replicas, target.replicas_line, target.replicas_path = (
                        spec["replicas"],
                        line_of(spec, "replicas"),
                        rel,
                    )
            for patch in containers if isinstance(containers, list) else []:
                for target in (
                    t
                    for t in targets
                    if isinstance(patch, dict) and t.name == str(patch.get("name"))
                ):
                    if isinstance(patch.get("command"), list):
                        target.command = [str(w) for w in patch["command"]]
                    if isinstance(patch.get("args"), list):
                        target.args = [str(w) for w in patch["args"]]
                    if patch.get("command") or patch.get("args"):
                        target.argv = target.command + target.args
                        target.path, target.line = (
                            rel,
                            line_of(patch, "args") or line_of(patch, "command"),
                        )
                    target.env = target.env.overlay(container_env(rel, patch))
            notes.append(f"kustomize patch {rel} applied to {name}")
    for where in plan.images:  # `images:` renames a placeholder to the image really deployed
        old, _, new = where.text[len("image ") :].partition(" -> ")
        for target in into.containers:
            if (
                target.image
                and target.image.split("@")[0].rsplit(":", 1)[0] == old
                and "/" not in target.image.rsplit(":", 1)[-1]
            ):
                target.image = new
    for name, count, where in plan.replicas:
        for target in (c for c in into.containers if c.workload == name):
            target.replicas, target.replicas_line, target.replicas_path = (
                count,
                where.line,
                where.path,
            )
    return notes


def read_helm_values(repo: RepoFiles, rel: str, into: Manifests) -> None:
    docs = load_file(repo, rel) or []

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key in ("replicaCount", "replicas") and isinstance(value, int):
                into.helm_values.append((rel, path, value, line_of(node, key)))
            elif key == "autoscaling" and isinstance(value, dict) and value.get("enabled"):
                into.helm_values.append(
                    (
                        rel,
                        f"{path}.maxReplicas",
                        value.get("maxReplicas"),
                        line_of(value, "maxReplicas"),
                    )
                )
            else:
                walk(value, path)

    for doc in docs:
        walk(doc, "")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
