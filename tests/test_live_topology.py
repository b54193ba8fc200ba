"""`probe --topology audit.json`: connections matched to the audit's process groups."""

from __future__ import annotations

import json

import pytest

from live_support import held, make_roles, pgslots
from pgslots.deploy.model import (
    ConnectionPolicy,
    Demand,
    ProcessGroup,
    Quantity,
    SlotBudget,
    Topology,
)
from pgslots.live.expectations import UNATTRIBUTED, match_group, name_fits
from pgslots.live.record import snapshot_from_json
from pgslots.serde import to_jsonable


def group(name: str, kind: str, steady: int, worst: int | None) -> ProcessGroup:
    return ProcessGroup(
        name=name,
        kind=kind,
        server_model="test",
        hosts=Quantity(1),
        processes=Quantity(steady),
        per_process=Quantity(1),
        aliases=("default",),
        policy=ConnectionPolicy(),
        demand=Demand(steady, worst, f"{steady}..{worst}"),
    )


TOPOLOGY = Topology(
    root="/srv/app",
    groups=(
        group("web", "web", 4, 8),
        group("celery-worker", "worker", 2, 4),
        group("celery", "worker", 1, 1),
        group("beat", "beat", 1, 1),
    ),
    slots=SlotBudget(Quantity(100), Quantity(3), Quantity(0)),
)


def test_matching_rule():
    groups = TOPOLOGY.groups
    assert name_fits("web", "web") and name_fits("WEB-7", "web") and name_fits("web.host3", "web")
    assert (
        not name_fits("webhook", "web") and not name_fits("", "web") and not name_fits(None, "web")
    )
    assert (
        match_group("celery-worker-3", "app", groups).name == "celery-worker"
    )  # longest name wins
    assert match_group("celery@host", "app", groups).name == "celery"
    assert (
        match_group("", "beat", groups).name == "beat"
    )  # the user name, when the application fits none
    assert match_group("psql", "app", groups) is None


@pytest.mark.postgres
def test_probe_with_topology_counts_each_group(embedded_pg, start_postgres, tmp_path):
    server = start_postgres(embedded_pg, settings={"max_connections": 30})
    make_roles(server)
    server.create_role("beat")
    audit = tmp_path / "audit.json"
    audit.write_text(
        json.dumps({"pgslots": "0.1.0", "command": "audit", "topology": to_jsonable(TOPOLOGY)})
    )
    with held() as clients:
        clients.open(server, "app", "postgres", "web-1", n=3)
        clients.open(server, "app", "postgres", "web-2", n=2)
        clients.open(server, "app", "postgres", "celery-worker-1", n=2)
        clients.open(server, "beat", "postgres", "")
        clients.open(server, "app", "postgres", "manage.py")
        clients.open(server, "postgres", "postgres", "psql")
        result = pgslots(
            "probe",
            server.dsn("mon"),
            "--app-role",
            "app",
            "--topology",
            str(audit),
            "--format",
            "json",
        )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    snapshot = snapshot_from_json(document)
    expectations = {
        e.group: (e.matched, e.expected_steady, e.expected_worst, e.status)
        for e in snapshot.expectations
    }
    assert expectations == {
        "web": (5, 4, 8, "over_steady"),
        "celery-worker": (2, 2, 4, "within"),
        "celery": (0, 1, 1, "within"),
        "beat": (1, 1, 1, "within"),
        UNATTRIBUTED: (1, None, None, "unexpected"),
    }
    tags = {(b.application, b.user): b.topology_group for b in snapshot.backends}
    assert tags[("web-2", "app")] == "web" and tags[("", "beat")] == "beat"
    assert tags[("manage.py", "app")] == UNATTRIBUTED
    assert tags[("psql", "postgres")] is None and tags[("pgslots", "mon")] is None
    codes = [f["code"] for f in document["findings"]]
    assert "PGS210" in codes and "PGS211" in codes
    text = pgslots("probe", server.dsn("mon"), "--app-role", "app", "--topology", str(audit))
    assert "Topology: expected against matched" in text.stdout
