"""Redaction keeps every document whole: secrets are masked inside strings only, and a boolean,
number or null under a secret-looking name stays what it is (issue 10 point 9)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import pgslots.cli.audit
import pgslots.cli.diagnose  # noqa: F401 - registers the command
from pgslots.cli import app
from pgslots.redact import MASK, Redactor

runner = CliRunner()

PROJECT = {
    "proj/__init__.py": "",
    "proj/settings.py": "import os\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql',"
    " 'HOST': os.environ.get('DB_HOST', 'db'), 'USER': 'app'}}\n",
    "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
}


def write_project(root: Path, environment: dict) -> None:
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    compose = {
        "services": {
            "web": {
                "image": "python:3.12",
                "command": "gunicorn proj.wsgi --workers 2",
                "environment": environment,
            },
            "db": {
                "image": "postgres:16",
                "environment": {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "fixture-redact-pw"},
            },
        }
    }
    (root / "docker-compose.yml").write_text(yaml.safe_dump(compose, allow_unicode=True))


def audit_json_text(root: Path) -> str:
    result = runner.invoke(app, ["audit", str(root), "--format", "json", "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_booleans_numbers_and_null_under_secret_names_keep_their_type_and_the_json_parses(
    tmp_path: Path,
) -> None:
    write_project(
        tmp_path,
        {
            "OG_PASSTHROUGH": "true",
            "DB_PASSWORD_MIN_LENGTH": 8,
            "AUTH_ENABLED": True,
            "API_TOKEN": "tok-3f9a8b7c6d5e",
            "SENTRY_DSN": None,
        },
    )
    text = audit_json_text(tmp_path)
    data = json.loads(text)  # `"given": true` must not become `"given": ****`
    assert data["inputs"][0]["given"] is True
    assert "tok-3f9a8b7c6d5e" not in text
    saved = tmp_path / "audit.json"
    saved.write_text(text)
    result = runner.invoke(app, ["diagnose", "--repo", str(saved), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    json.loads(result.stdout)


def test_scrubbing_json_masks_inside_strings_even_when_escaped() -> None:
    redactor = Redactor()
    redactor.register_named("SECRET_KEY", 'a"quoted\\secret')
    redactor.register_named("FEATURE_AUTH", "true")
    text = json.dumps({"k": 'x a"quoted\\secret y', "given": True, "n": 1234}, indent=2)
    out = redactor.scrub(text)
    assert json.loads(out) == {"k": f"x {MASK} y", "given": True, "n": 1234}


NAMES = st.one_of(
    st.sampled_from(
        [
            "DB_PASSWORD",
            "SECRET_KEY",
            "OG_PASSTHROUGH",
            "API_TOKEN",
            "AUTH_MODE",
            "DATABASE_URL",
            "license",
        ]
    ),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True),
)
VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    st.from_regex(r"postgres://app:[A-Za-z0-9]{1,12}@db:5432/app", fullmatch=True),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environment=st.dictionaries(NAMES, VALUES, max_size=8))
def test_every_audit_json_parses_whatever_the_compose_environment(environment: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_project(root, environment)
        text = audit_json_text(root)
    data = json.loads(text)
    assert data["inputs"][0]["given"] is True
    for name, value in environment.items():
        if (
            name in ("DB_PASSWORD", "SECRET_KEY", "API_TOKEN")
            and isinstance(value, str)
            and len(value) >= 12
            and value.isalnum()
        ):
            assert value not in text, name


def test_plain_values_stay_and_numeric_passwords_are_masked() -> None:
    from pgslots.redact import redact_value

    assert [
        redact_value("OG_PASSTHROUGH", "true"),
        redact_value("AUTH_ENABLED", "False"),
        redact_value("PASSWORD_MIN_LENGTH", "8"),
    ] == ["true", "False", "8"]
    assert redact_value("DB_PASSWORD", "123456") == MASK


def test_a_password_equal_to_the_role_name_does_not_mask_the_project_name() -> None:
    """kiwitcms/Kiwi: `POSTGRES_USER: kiwi` and `POSTGRES_PASSWORD: kiwi` masked every `kiwi` in
    the report (the repository path, the image, the group name); the role's name is public."""
    redactor = Redactor()
    redactor.register_named("POSTGRES_PASSWORD", "kiwi")
    redactor.register_named("KIWI_DB_PASSWORD", "kiwi")
    redactor.register_named("SECRET_KEY", "s3cr3t-value")
    assert (
        redactor.scrub("group kiwi at /work/kiwitcms__Kiwi") == "group **** at /work/kiwitcms__Kiwi"
    )
    redactor.register_named("KIWI_DB_USER", "kiwi")
    redactor.register_named("POSTGRES_DB", "kiwi")
    assert redactor.scrub("group kiwi at /work/kiwitcms__Kiwi, key s3cr3t-value") == (
        f"group kiwi at /work/kiwitcms__Kiwi, key {MASK}"
    )


def test_a_secret_is_masked_as_a_whole_word_and_settings_about_secrets_stay() -> None:
    # `AUTH_TYPE: xpro` is configuration, not a secret; and a registered secret must not mask
    # a longer word that contains it (the project's folder `mitxpro`).
    redactor = Redactor()
    redactor.register_named("CREDENTIALS_AUTH_TYPE", "xpro")
    redactor.register_named("PASSWORD_MIN_LENGTH", "12")
    redactor.register_named("DB_PASSWORD", "hunter22")
    text = (
        "audit /src/mitxpro: xpro auth, password hunter22, postgres://app:hunter22@db/x, hunter222"
    )
    assert redactor.scrub(text) == (
        "audit /src/mitxpro: xpro auth, password ****, postgres://app:****@db/x, hunter222"
    )
