"""The project's vocabulary: codes that are referenced exist, and the model edits of a remedy
are recognised once they hold (whatever they target: a group, the server or pgbouncer)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from pgslots.audit import run_audit
from pgslots.deploy.model import Topology
from pgslots.diagnose.inplace import already_in_place
from pgslots.remedies import propose
from pgslots.remedy import REMEDIES, Remedy, apply_changes, changes_hold
from pgslots.rules import load_all_checks

ROOT = Path(__file__).resolve().parents[1]
REPOS = ROOT / "tests" / "fixtures" / "repos"


def _remedy(repo: str, code: str) -> tuple[Remedy, Topology]:
    topology = run_audit(REPOS / repo).topology
    assert topology is not None
    by_code = {r.code: r for r in propose(topology)}
    assert code in by_code, f"{repo} no longer proposes {code}: pick a fixture that does"
    return by_code[code], topology


@pytest.mark.parametrize("code", ["R04", "R07", "R03", "R05"])
def test_a_remedy_holds_once_its_own_changes_are_applied(code: str) -> None:
    # tamato_procfile is over its budget with a bounded worst case: R07 (the server's
    # max_connections) and R04 (pgbouncer's pools) are both proposed there.
    remedy, topology = _remedy("tamato_procfile", code)
    assert not changes_hold(remedy, topology), "proposed although it is already in place"
    applied = apply_changes(topology, remedy.changes)
    assert changes_hold(remedy, applied)
    assert already_in_place(remedy, (), applied) is not None


def test_a_group_called_like_the_server_is_not_the_server() -> None:
    """A compose service named `server` or `pgbouncer` is a group: the server's own edits must
    not be read from it, nor land on it."""
    remedy, topology = _remedy("tamato_procfile", "R07")
    first, *rest = topology.groups
    renamed = dataclasses.replace(
        topology, groups=(dataclasses.replace(first, name="server"), *rest)
    )
    applied = apply_changes(renamed, remedy.changes)
    assert next(g.name for g in applied.groups) == "server"
    assert applied.slots.max_connections.value == remedy.changes[0].value
    assert changes_hold(remedy, applied)


_FINDING = re.compile(r"\bPGS\d{3}\b")
_REMEDY = re.compile(r"\bR\d{2}\b")
_TEXT = ("*.py", "*.md", "*.html", "*.j2", "*.txt", "*.json")


def _project_texts() -> list[Path]:
    roots = [ROOT / "src" / "pgslots", ROOT / "docs"]
    files = [ROOT / "README.md"]
    for root in roots:
        if root.is_dir():
            files += [p for pattern in _TEXT for p in root.rglob(pattern)]
    return [p for p in files if p.is_file()]


def test_every_referenced_finding_and_remedy_code_exists() -> None:
    checks = load_all_checks()
    missing: list[str] = []
    for path in _project_texts():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for code in _FINDING.findall(line):
                # "PGS001-099" names a range, and "PGS100-199" too: only whole codes count
                if (
                    code not in checks
                    and not re.search(rf"{code}-\d", line)
                    and not re.search(rf"\d-{code}", line)
                ):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: finding {code}")
            for code in _REMEDY.findall(line):
                if code not in REMEDIES:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: remedy {code}")
    assert not missing, "\n".join(missing)


def test_every_remedy_a_finding_offers_is_in_the_catalogue() -> None:
    from pgslots.errors import InputError

    for repo in sorted(p for p in REPOS.iterdir() if p.is_dir()):
        try:
            diagnosis = run_audit(repo)
        except InputError:  # a tree the audit refuses (no Django project, several projects)
            continue
        for finding in diagnosis.findings:
            assert finding.code in load_all_checks()
            assert set(finding.remedies) <= set(REMEDIES), (
                repo.name,
                finding.code,
                finding.remedies,
            )


def test_terms_are_typed_and_still_read_as_their_text() -> None:
    from pgslots.deploy.model import ConcurrencyModel, GroupKind
    from pgslots.serde import from_jsonable, to_jsonable

    topology = run_audit(REPOS / "writeup").topology
    assert topology is not None
    web = next(g for g in topology.groups if g.name == "django")
    assert web.kind is GroupKind.WEB and web.concurrency_model is ConcurrencyModel.ASGI
    assert (
        web.kind == "web"
        and {"web": 1}[web.kind] == 1
        and f"{web.kind}/{web.concurrency_model}" == "web/asgi"
    )
    data = to_jsonable(web)
    assert (data["kind"], data["concurrency_model"]) == ("web", "asgi")
    assert from_jsonable(type(web), data) == web
