"""`pgslots audit`: realistic repository trees against hand-worked oracles, robustness, formats."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import pgslots.cli.audit
import pgslots.cli.diagnose  # noqa: F401 - registers the command
from pgslots.cli import app
from pgslots.deploy.model import Topology
from pgslots.serde import from_jsonable, to_jsonable

REPOS = Path(__file__).parent / "fixtures" / "repos"
FIXTURES = sorted(p.name for p in REPOS.iterdir() if (p / "expected.yaml").exists())
runner = CliRunner()


def audit_json(path: Path, *args: str) -> dict:
    result = runner.invoke(
        app, ["audit", str(path), "--format", "json", "--fail-on", "never", *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _value(quantity: dict) -> object:
    if quantity["value"] is None:
        return "unknown" if quantity.get("unknown") else "unbounded"
    return quantity["value"]


def _worst(demand: dict) -> object:
    """A worst case as the oracles write it: a number, "unbounded" or "unknown"."""
    bound = demand.get("bound", "number" if demand["worst"] is not None else "unbounded")
    assert (demand["worst"] is None) == (bound != "number"), demand  # the JSON contract
    return demand["worst"] if bound == "number" else bound


def _steady(demand: dict) -> object:
    return "unknown" if demand["steady"] is None else demand["steady"]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_its_hand_worked_oracle(name: str) -> None:
    expected = yaml.safe_load((REPOS / name / "expected.yaml").read_text())
    if "refused" in expected:
        # Input the audit must refuse: one line naming the problem, exit 2, no traceback.
        refused = runner.invoke(app, ["audit", str(REPOS / name)])
        lines = [line for line in refused.output.splitlines() if line.strip()]
        assert refused.exit_code == 2 and len(lines) == 1, refused.output
        for words in expected["refused"]:
            assert words in lines[0], (words, lines[0])
        if "project" not in expected:
            return
    project = ["--project", expected["project"]] if "project" in expected else []
    data = audit_json(REPOS / name, *project)
    topology = data["topology"]
    assert topology["settings_module"] == expected["settings_module"]
    groups = {g["name"]: g for g in topology["groups"]}
    assert set(groups) == set(expected["groups"])
    for group_name, want in expected["groups"].items():
        got = groups[group_name]
        assert got["kind"] == want["kind"], group_name
        assert got["concurrency_model"] == want["concurrency_model"], group_name
        for key in ("processes", "per_process"):
            if key in want:
                assert _value(got[key]) == want[key], (group_name, key)
        assert _steady(got["demand"]) == want["steady"], group_name
        assert _worst(got["demand"]) == want["worst"], group_name
        if "unit" in want:
            assert got["unit"] == want["unit"], group_name
    total = topology["demand"]
    assert total["steady"] == expected["total"]["steady"]
    assert _worst(total) == expected["total"]["worst"]
    if "verdict" in expected:
        assert data["summary"]["verdict"] == expected["verdict"]
    for state in ("kept", "dropped"):
        if state in (expected.get("units") or {}):
            listed = {u["name"]: u for u in topology["units"] if u["kept"] is (state == "kept")}
            assert set(listed) == set(expected["units"][state]), (state, sorted(listed))
            for unit_name, want_unit in (expected["units"][state] or {}).items():
                for key, value in (want_unit or {}).items():
                    assert listed[unit_name][key] == value, (unit_name, key, listed[unit_name])
    slots = expected.get("slots", {})
    if "usable" in slots:
        assert (
            topology["slots"]["usable"] if topology["slots"]["usable"] is not None else "unknown"
        ) == slots["usable"]
    if "usable_if_default" in slots:
        assert topology["slots"]["usable_if_default"] == slots["usable_if_default"]
    if "max_connections" in slots:
        assert _value(topology["slots"]["max_connections"]) == slots["max_connections"]
    if "role_is_superuser" in slots:
        assert topology["slots"]["role_is_superuser"] is slots["role_is_superuser"]
    if "unknowns" in expected:
        assert [u["name"] for u in topology["unknowns"]] == expected["unknowns"]
    assert sorted(f["code"] for f in data["findings"]) == sorted(expected["findings"])
    assert [r["code"] for r in data["remedies"]] == expected["remedies"]
    for group_name, locations in (expected.get("evidence") or {}).items():
        cited = {f"{e['path']}:{e['line']}" for e in groups[group_name]["evidence"]}
        assert set(locations) <= cited, (group_name, cited)
    versions = {v["package"]: v for v in topology["versions"]}
    for package, version in (expected.get("versions") or {}).items():
        assert versions[package]["version"] == version, package
    assert not set(expected.get("versions_absent") or ()) & set(versions)
    for package, location in (expected.get("version_evidence") or {}).items():
        evidence = versions[package]["evidence"]
        assert f"{evidence['path']}:{evidence['line']}" == location, package
    if "pgbouncer" in expected:
        for key, value in expected["pgbouncer"].items():
            assert topology["pgbouncer"][key] == value
    proposed = json.dumps(data["remedies"])
    for change in expected.get("never_proposed_changes", []):
        assert change not in proposed, change
    if "assumed" in expected:
        # The same audit with counts supplied: every name it printed is accepted.
        want = expected["assumed"]
        again = audit_json(
            REPOS / name, *project, *[arg for item in want["assume"] for arg in ("--assume", item)]
        )
        assert again["topology"]["demand"]["steady"] == want["total"]["steady"]
        assert _worst(again["topology"]["demand"]) == want["total"]["worst"]
        assert again["summary"]["verdict"] == want["verdict"]


def test_writeup_web_is_unbounded_cites_conn_max_age_and_never_proposes_persistence() -> None:
    data = audit_json(REPOS / "writeup")
    leak = [f for f in data["findings"] if f["code"] == "PGS003"]
    assert leak and any(
        e["path"] == "config/settings/production.py" and e["line"] == 15
        for e in leak[0]["evidence"]
    )
    assert data["remedies"][0]["code"] == "R01"
    everything = json.dumps(data["remedies"])
    assert "CONN_MAX_AGE=60" not in everything and "CONN_MAX_AGE = 60" not in everything
    web = next(g for g in data["topology"]["groups"] if g["name"] == "django")
    assert web["demand"]["worst"] is None
    # every remedy's prediction is the budget model re-run with its own changes
    from pgslots.remedy import Remedy, predict

    topology = from_jsonable(Topology, data["topology"])
    for remedy in data["remedies"]:
        assert to_jsonable(predict(topology, from_jsonable(Remedy, remedy))) == remedy["predicted"]


def test_topology_json_round_trips_for_probe_and_diagnose() -> None:
    data = audit_json(REPOS / "writeup")
    topology = from_jsonable(Topology, data["topology"])
    assert to_jsonable(topology) == data["topology"]


def test_assumptions_set_unknowns_and_bad_names_exit_2() -> None:
    data = audit_json(
        REPOS / "cookiecutter_wsgi",
        "--assume",
        "web.hosts=16",
        "--assume",
        "celeryworker.cpus=8",
        "--assume",
        "server.max_connections=100",
    )
    groups = {g["name"]: g for g in data["topology"]["groups"]}
    assert groups["django"]["demand"]["worst"] == 16 * 4
    assert groups["celeryworker"]["demand"]["worst"] == 8
    assert "celeryworker.cpus" not in [u["name"] for u in data["topology"]["unknowns"]]
    bad = runner.invoke(app, ["audit", str(REPOS / "writeup"), "--assume", "nosuch.hosts=3"])
    assert bad.exit_code == 2 and "valid names" in bad.output


def test_secrets_from_env_files_and_dsns_never_reach_any_format() -> None:
    for fmt in ("text", "json", "markdown", "sarif"):
        for name, secrets in (
            (
                "writeup",
                (
                    "example-db-pass-7c3",
                    "example-broker-pass-41d",
                    "example-secret-key-do-not-use-8f2c1",
                ),
            ),
            ("compose_pgbouncer", ("fixture-app-pw-55", "fixture-super-pw-66")),
            ("cookiecutter_wsgi", ("fixture-db-password-9f8e", "fixture-secret-key-1a2b3c")),
        ):
            result = runner.invoke(app, ["audit", str(REPOS / name), "--format", fmt])
            assert result.exit_code in (0, 1), result.output
            for secret in secrets:
                assert secret not in result.stdout, (name, fmt, secret)


def test_sarif_points_at_file_and_line() -> None:
    result = runner.invoke(app, ["audit", str(REPOS / "writeup"), "--format", "sarif"])
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} >= {"PGS002", "PGS003"}
    leak = next(r for r in run["results"] if r["ruleId"] == "PGS003")
    location = leak["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "config/settings/production.py"
    assert location["region"]["startLine"] == 15


def test_fail_on_error_exits_1_and_markdown_renders() -> None:
    assert (
        runner.invoke(app, ["audit", str(REPOS / "writeup")]).exit_code == 1
    )  # default --fail-on error
    assert (
        runner.invoke(app, ["audit", str(REPOS / "writeup"), "--fail-on", "never"]).exit_code == 0
    )
    assert (
        runner.invoke(app, ["audit", str(REPOS / "replica_alias"), "--fail-on", "error"]).exit_code
        == 0
    )
    markdown = runner.invoke(app, ["audit", str(REPOS / "writeup"), "--format", "markdown"]).stdout
    assert "| django |" in markdown and "PGS003" in markdown


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(REPOS / name, target)
    return target


def test_broken_files_become_findings_and_the_audit_goes_on(tmp_path: Path) -> None:
    repo = _copy("writeup", tmp_path)
    (repo / "docker-compose.staging.yml").write_text("services:\n  web: [unclosed\n")
    (repo / "config" / "settings" / "production.py").write_text(
        (repo / "config" / "settings" / "production.py").read_text() + "\ndef broken(:\n"
    )
    # a file the audit reads (compose's env_file); a Procfile would not do: with a
    # production compose file present the audit never opens it, so nothing is missing
    unreadable = repo / ".envs" / ".production" / ".postgres-example"
    unreadable.chmod(0)
    try:
        data = audit_json(repo)
    finally:
        unreadable.chmod(0o644)
    messages = [f["message"] for f in data["findings"] if f["code"] == "PGS013"]
    assert any("docker-compose.staging.yml" in m and "invalid YAML" in m for m in messages)
    assert any("production.py" in m and "syntax error" in m for m in messages)
    if os.geteuid() != 0:  # root reads anything: the permission case only holds for others
        assert any(".postgres-example" in m and "Permission denied" in m for m in messages)
    assert any(g["name"] == "django" for g in data["topology"]["groups"])


def test_settings_that_would_run_a_command_are_read_not_run(tmp_path: Path) -> None:
    repo = _copy("replica_alias", tmp_path)
    marker = tmp_path / "EXECUTED"
    settings = repo / "app" / "settings.py"
    settings.write_text(
        f"import os, subprocess\nos.system('touch {marker}')\nsubprocess.run(['touch', '{marker}'])\n"
        f"open('{marker}', 'w').write('x')\n__import__('os').system('touch {marker}')\n"
        + settings.read_text()
    )
    data = audit_json(repo)
    assert not marker.exists()
    assert data["topology"]["demand"]["worst"] == 8


def test_vendored_and_virtualenv_trees_are_skipped(tmp_path: Path) -> None:
    repo = _copy("replica_alias", tmp_path)
    for folder in ("node_modules/pkg", ".venv/lib", "build", ".git", "env_custom"):
        (repo / folder).mkdir(parents=True, exist_ok=True)
        (repo / folder / "Procfile").write_text("web: gunicorn evil.wsgi --workers 99\n")
        (repo / folder / "docker-compose.prod.yml").write_text(
            "services:\n  web:\n    command: gunicorn evil.wsgi -w 99\n"
        )
    (repo / "env_custom" / "pyvenv.cfg").write_text("home = /usr\n")
    data = audit_json(repo)
    assert [g["processes"]["value"] for g in data["topology"]["groups"]] == [4]


def test_a_path_that_is_not_a_django_project_gives_a_clear_result(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not django\n")
    refused = runner.invoke(app, ["audit", str(tmp_path), "--format", "json"])
    assert (
        refused.exit_code == 2
        and "not a Django deployment" in refused.output
        and len(refused.output.strip().splitlines()) == 1
    )
    missing = runner.invoke(app, ["audit", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_help_has_examples() -> None:
    result = runner.invoke(app, ["audit", "--help"])
    assert result.exit_code == 0 and "--assume" in result.stdout and "Examples" in result.stdout


def test_readme_example_is_the_real_output() -> None:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "commands" / "audit.md").read_text()
    block = readme.split("$ pgslots audit tests/fixtures/repos/writeup\n", 1)[1].split("\n```", 1)[
        0
    ]
    root = Path(__file__).resolve().parent.parent
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = runner.invoke(app, ["audit", "tests/fixtures/repos/writeup"])
    finally:
        os.chdir(cwd)
    assert result.stdout.rstrip() == block.rstrip()


def test_services_that_hold_no_connection_are_named_not_called_missing(tmp_path: Path) -> None:
    # A compose file whose services are all infrastructure: the finding names the unit and why,
    # never "no compose service" (issue 10 point 3).
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "settings.py").write_text(
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n"
    )
    (tmp_path / "manage.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n"
    )
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  cache:\n    image: redis:7\n  proxy:\n    image: nginx:1.27\n"
    )
    data = audit_json(tmp_path)
    messages = [f["message"] for f in data["findings"] if f["code"] == "PGS014"]
    assert messages and all("no compose service" not in m for m in messages)
    assert "docker-compose.yml" in messages[0]
    # No process of the project: the demand is unknown, never a worst case of 0 that reads as "fits".
    assert (
        data["topology"]["demand"]["bound"] == "unknown"
        and data["topology"]["demand"]["worst"] is None
    )
    assert data["summary"]["verdict"] == "unknown"


def test_diagnose_reports_an_unknown_budget_as_unknown_not_unexplained() -> None:
    # The write-up's events against a deployment whose only group cannot be modelled: the join
    # says "unknown", and neither "the budget explains it" nor "unexplained exhaustion".
    events = sorted((Path(__file__).parent / "fixtures" / "newrelic").iterdir())[0]
    result = runner.invoke(
        app,
        [
            "diagnose",
            "--repo",
            str(REPOS / "image_only_app"),
            "--events",
            str(events),
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["capacity"]["worst"] is None and report["capacity"]["worst_bound"] == "unknown"
    assert not report["capacity"]["worst_unbounded"]
    codes = {f["code"] for f in report["findings"]}
    assert "PGS026" in codes and not codes & {"PGS404", "PGS405"}


def test_unit_chooses_another_deployment_and_a_wrong_name_lists_them() -> None:
    data = audit_json(REPOS / "alternative_units", "--unit", "docker-compose")
    kept = [u["name"] for u in data["topology"]["units"] if u["kept"]]
    assert kept == ["docker-compose"]
    worst = {g["name"]: g["demand"]["worst"] for g in data["topology"]["groups"]}
    assert worst == {"web": 6, "worker": 4}  # the compose file's gunicorn --workers 6, celery -c 4
    assert (
        data["topology"]["slots"]["max_connections"]["value"] == 100
    )  # its postgres service is the server now
    bad = runner.invoke(app, ["audit", str(REPOS / "alternative_units"), "--unit", "nope"])
    assert bad.exit_code == 2 and "Procfile" in bad.output and "docker-compose" in bad.output


def test_a_worker_unit_that_may_run_nowhere_is_an_unknown_at_floor_zero(tmp_path: Path) -> None:
    # docker-compose.celery.yml runs the project's workers with no web server and says nothing about
    # where: its own hosts, at floor 0 (it may run on no host), never silently dropped.
    target = _copy("writeup_worker_hosts", tmp_path)
    worker = target / "docker-compose.worker.yml"
    worker.write_text(
        "\n".join(line for line in worker.read_text().splitlines() if not line.startswith("#"))
        + "\n"
    )
    worker.rename(target / "docker-compose.celery.yml")
    data = audit_json(target)
    unit = next(u for u in data["topology"]["units"] if u["name"] == "docker-compose.celery")
    assert (
        unit["kept"] and unit["hosts"] == "docker-compose.celery.hosts" and unit["hosts_floor"] == 0
    )
    hosts = next(
        u for u in data["topology"]["unknowns"] if u["name"] == "docker-compose.celery.hosts"
    )
    assert hosts["floor_value"] == 0 and hosts["adds_per_unit"] == 96
    assert data["topology"]["demand"]["steady"] == 21  # at the floor, the app host only
    again = audit_json(target, "--assume", "docker-compose.celery.hosts=2")
    assert again["topology"]["demand"]["steady"] == 21 + 2 * 96
