"""kustomize overlays as they are written: `kustomization.yaml` with `resources`, `patches`,
`replicas` and `images`, a base and one overlay per environment.

pgslots does not run kustomize; it applies what decides connections: the overlay's patches of
a workload's replicas, container command, args and env, and its `replicas:` entries. One
overlay is the deployment: the leaf kustomization (no other one includes it) named for
production (`overlays/production`, `prod`, `live`); the other leaves are alternatives. Patch
files are never workloads of their own, and manifests only other overlays reach are not read.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Any

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.yamlfile import line_of, load_file
from pgslots.evidence import Evidence

NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
PRODUCTION = re.compile(r"(^|[-_/])(prod|production|live|prd)([-_/]|$)", re.I)


@dataclasses.dataclass
class Kustomization:
    path: str
    folder: str
    resources: list[str]  # repository paths: files or folders holding a kustomization
    patches: list[str]  # patch files
    replicas: list[tuple[str, int, Evidence]]  # (workload name, count, where)
    images: list[Evidence]  # `image OLD -> NEW[:TAG]`, as kustomize's `images:` renames them


@dataclasses.dataclass
class Plan:
    """What the chosen overlay makes of the tree."""

    chosen: Kustomization | None
    files: set[str]  # manifests the chosen overlay reaches (its own and its bases')
    patches: list[str]  # in the order kustomize applies them (bases first)
    replicas: list[tuple[str, int, Evidence]]
    skipped: set[str]  # every patch file and the manifests only other overlays reach
    alternatives: list[str]
    images: list[Evidence]


def read_plan(repo: RepoFiles) -> Plan | None:
    kustomizations = {}
    for rel in repo.paths:
        if rel.rsplit("/", 1)[-1] in NAMES:
            parsed = _read(repo, rel)
            if parsed is not None:
                kustomizations[parsed.folder] = parsed
    if not kustomizations:
        return None
    included = {r for k in kustomizations.values() for r in k.resources if r in kustomizations}
    leaves = sorted(
        (k for f, k in kustomizations.items() if f not in included),
        key=lambda k: (not PRODUCTION.search(k.folder), k.folder),
    )
    chosen = leaves[0]
    files: set[str] = set()
    patches: list[str] = []
    replicas: list[tuple[str, int, Evidence]] = []
    images: list[Evidence] = []

    def walk(k: Kustomization, seen: set[str]) -> None:
        if k.folder in seen:
            return
        seen.add(k.folder)
        for resource in k.resources:
            if resource in kustomizations:
                walk(kustomizations[resource], seen)
            else:
                files.add(resource)
        patches.extend(k.patches)
        replicas.extend(k.replicas)
        images.extend(k.images)

    walk(chosen, set())
    every_patch = {p for k in kustomizations.values() for p in k.patches}
    under = {
        rel
        for rel in repo.paths
        for folder in kustomizations
        if rel.startswith(folder + "/") and rel.endswith((".yaml", ".yml"))
    }
    skipped = every_patch | {rel for rel in under if rel not in files}
    return Plan(chosen, files, patches, replicas, skipped, [k.folder for k in leaves[1:]], images)


def _read(repo: RepoFiles, rel: str) -> Kustomization | None:
    docs = load_file(repo, rel) or []
    doc = docs[0] if docs and isinstance(docs[0], dict) else None
    if doc is None:
        return None
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    if doc.get("kind") not in (None, "Kustomization") or not {
        "resources",
        "bases",
        "patches",
        "patchesStrategicMerge",
    } & set(doc):
        # Manifests saved under the kustomization name (an older layout): a set of its own.
        return Kustomization(rel, folder, [rel], [], [], []) if doc.get("kind") else None

    def at(path: str) -> str:
        return (
            posixpath.normpath(posixpath.join(folder, path)) if folder else posixpath.normpath(path)
        )

    resources = [
        at(str(r))
        for r in (doc.get("resources") or []) + (doc.get("bases") or [])
        if isinstance(r, str) and "://" not in r
    ]
    patches = [at(str(p)) for p in doc.get("patchesStrategicMerge") or [] if isinstance(p, str)]
    patches += [
        at(str(p["path"]))
        for p in doc.get("patches") or []
        if isinstance(p, dict) and isinstance(p.get("path"), str)
    ]
    counts = [
        (
            str(r.get("name")),
            r["count"],
            Evidence(rel, line_of(r, "count"), f"replicas: {r.get('name')} count {r['count']}"),
        )
        for r in doc.get("replicas") or []
        if isinstance(r, dict) and isinstance(r.get("count"), int)
    ]
    images = [
        Evidence(
            rel,
            line_of(i, "name"),
            f"image {i.get('name')} -> {i.get('newName', i.get('name'))}"
            + (f":{i['newTag']}" if i.get("newTag") else ""),
        )
        for i in doc.get("images") or []
        if isinstance(i, dict) and i.get("name")
    ]
    return Kustomization(rel, folder, resources, patches, counts, images)


def patch_workloads(repo: RepoFiles, rel: str) -> list[tuple[str, dict[str, Any], Any]]:
    """(workload name, its spec, the containers list) of each workload a patch file patches."""
    out = []
    for doc in load_file(repo, rel) or []:
        if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
            continue
        spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
        template: dict[str, Any] = (
            spec["template"] if isinstance(spec.get("template"), dict) else {}
        )
        pod: dict[str, Any] = template["spec"] if isinstance(template.get("spec"), dict) else {}
        out.append((str(doc["metadata"].get("name")), spec, pod.get("containers") or []))
    return out
