"""Container services declared in infrastructure code: AWS CDK apps, Terraform, Pulumi.

A repository that deploys with `cdk deploy` or `terraform apply` declares its web and worker
services in a program (`ecs.FargateService(...)`, `resource "aws_ecs_service"`), whose counts,
commands and images are expressions of that program. pgslots does not evaluate it; the
Dockerfile CMD beside it then describes one container of an unknown number, and a worker
service the code also declares would be silently missing. Each such program is therefore one
unknown group, ranked like an unrendered Helm chart (before a bare Dockerfile CMD), with the
line of every service it declares as evidence.
"""

from __future__ import annotations

import re

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.helm import HelmChart
from pgslots.evidence import Evidence

_SERVICES = re.compile(
    r"\b(?:ecs_patterns\.\w*(?:Fargate|Ec2)Service|ecs\.(?:Fargate|Ec2)Service|"
    r"apprunner\.(?:Cfn)?Service|aws\.ecs\.Service|gcp\.cloudrun(?:v2)?\.Service)\s*\(|"
    r"^\s*resource\s+\"(?:aws_ecs_service|aws_apprunner_service|google_cloud_run_(?:v2_)?service|"
    r"kubernetes_deployment(?:_v1)?|azurerm_container_app|digitalocean_app)\"",
    re.MULTILINE,
)
"""A declaration of a long-running container service (ECS, App Runner, Cloud Run, Kubernetes,
Azure Container Apps, DigitalOcean App Platform)."""

_PROGRAMS = (
    ("AWS CDK app", "cdk.json", (".py", ".ts", ".js")),
    ("Pulumi program", "Pulumi.yaml", (".py", ".ts", ".js", ".go")),
)


def read_iac_apps(repo: RepoFiles, skip: re.Pattern[str]) -> list[HelmChart]:
    """Each CDK app (`cdk.json`), Pulumi program (`Pulumi.yaml`) or Terraform folder that
    declares a container service, as one unrendered deployment (the shape of a Helm chart)."""
    out: list[HelmChart] = []
    for kind, marker, suffixes in _PROGRAMS:
        for rel in repo.named(marker):
            folder = _program_folder(repo, rel, suffixes)
            found = _declarations(repo, folder, suffixes, skip)
            if found:
                out.append(_app(kind, "program", folder, found))
    terraform: dict[str, list[Evidence]] = {}
    for path in repo.paths:
        if path.endswith(".tf") and not skip.search(path):
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            terraform.setdefault(folder, []).extend(_declared_in(repo, path))
    for folder, found in sorted(terraform.items()):
        if found:
            out.append(_app("Terraform configuration", "program", folder, found))
    return out


def _program_folder(repo: RepoFiles, marker: str, suffixes: tuple[str, ...]) -> str:
    """Where the program's sources are: the folder of the file cdk.json's `app` runs
    (`python3 cdk/app.py` -> cdk), else the marker's own folder."""
    folder = marker.rsplit("/", 1)[0] if "/" in marker else ""
    found = re.search(r'"app"\s*:\s*"([^"]*)"', repo.text(marker) or "")
    for word in found[1].split() if found else ():
        if word.endswith(suffixes) and "/" in word:
            return join(folder, word.rsplit("/", 1)[0])
    return folder


def _declarations(
    repo: RepoFiles, folder: str, suffixes: tuple[str, ...], skip: re.Pattern[str]
) -> list[Evidence]:
    prefix = folder + "/" if folder else ""
    return [
        evidence
        for path in repo.paths
        if path.startswith(prefix)
        and path.endswith(suffixes)
        and not skip.search(path)
        and "/node_modules/" not in f"/{path}"
        for evidence in _declared_in(repo, path)
    ]


def _declared_in(repo: RepoFiles, path: str) -> list[Evidence]:
    text = repo.text_uncached(path) or ""
    return [
        Evidence(path, text.count("\n", 0, match.start()) + 1, match[0].strip()[:60])
        for match in _SERVICES.finditer(text)
    ]


def _app(kind: str, language: str, folder: str, found: list[Evidence]) -> HelmChart:
    """Named after its folder; cited at its first service declaration."""
    name = folder.rsplit("/", 1)[-1] if folder else "infrastructure"
    return HelmChart(name, folder, found[0], found, [], [], [], kind, language)
