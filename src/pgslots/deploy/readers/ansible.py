"""Ansible roles as they are written: Jinja-templated systemd units and supervisord programs.

A role installs `templates/gunicorn.service.j2` (`ExecStart={{ venv }}/bin/gunicorn --workers
{{ gunicorn_workers }} ...`) or `templates/supervisor.conf.j2` (`[program:{{ app_name }}]`)
with the values of its `defaults/`, the inventory's `group_vars/` and its `vars/`. pgslots does
not run Ansible; it substitutes each `{{ name }}` it can resolve from those files (Ansible's
precedence: role defaults < group_vars all < group_vars of a production group < role vars), with
the file:line of the value as evidence, and the template is then read as the unit or program it
renders to. A variable it cannot resolve (an inventory fact, `ansible_processor_vcpus`, a vault)
becomes `${name}`, unset, so the count it feeds is an unknown, never a guess.
"""

from __future__ import annotations

import re

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.yamlfile import line_of, load_file
from pgslots.redact import is_secret_name

EXPRESSION = re.compile(r"\{\{-?\s*(?P<expr>.*?)\s*-?\}\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_FILTER = re.compile(
    r"^\s*default\(\s*(?P<value>'[^']*'|\"[^\"]*\"|[\w.\-/]+)\s*(,\s*\w+\s*)?\)\s*$"
)
PRODUCTION_GROUPS = re.compile(r"(^|[-_.])(prod|production|live|prd|web|app|all)([-_.]|$)", re.I)
Variables = dict[str, tuple[str, str]]  # name -> (value as written, "file:line")


def is_unit_template(repo: RepoFiles, rel: str) -> bool:
    """A Jinja template of a systemd unit or a supervisord program (`supervisor_config.j2` too)."""
    if rel.endswith((".service.j2", ".service.jinja", ".service.jinja2")):
        return True
    return (
        "templates/" in rel
        and rel.endswith((".j2", ".jinja2"))
        and "[program:" in (repo.text(rel) or "")
    )


def rendered_name(rel: str) -> str:
    """`roles/web/templates/gunicorn.service.j2` -> `gunicorn.service`."""
    return re.sub(r"\.(j2|jinja2?)$", "", rel.rsplit("/", 1)[-1])


def render_unit_templates(repo: RepoFiles, notes: list[str]) -> list[str]:
    """Substitute the role variables into every unit template and keep the rendered text as the
    file's text (so the systemd and supervisord readers read it, lines unchanged). Returns the
    templates rendered."""
    out = []
    units = [rel for rel in repo.paths if is_unit_template(repo, rel)]
    # A start script the role renders from its own template (`command={{ venv }}/bin/gunicorn_start`
    # from templates/gunicorn_start.j2) is read as that template, rendered the same way.
    scripts = {
        rendered_name(rel): rel
        for rel in repo.paths
        if "/templates/" in f"/{rel}"
        and rel.endswith((".j2", ".jinja2"))
        and (repo.text(rel) or "").startswith("#!")
    }
    for rel in units + [p for p in scripts.values() if p not in units]:
        text = repo.text(rel)
        if text is None or ("{{" not in text and "{%" not in text):
            out.append(rel)
            continue
        variables = role_variables(repo, rel)
        resolved: list[str] = []
        unresolved: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            value, where, name = evaluate(match["expr"], variables)  # noqa: B023 - used by re.sub in this iteration
            if value is not None and is_secret_name(name):
                value = None  # a password is never written into the text pgslots quotes
            if value is None:
                unresolved.append(name)  # noqa: B023 - as above
                return f"${{{name}}}" if NAME.match(name) else match[0]
            if where:
                resolved.append(f"{name}={value} ({where})")  # noqa: B023 - as above
            return value

        lines = [
            EXPRESSION.sub(substitute, line) if not line.lstrip().startswith("{%") else ""
            for line in text.splitlines()
        ]
        if rel in units:
            lines = [_script_paths(line, scripts) for line in lines]
            stem = rendered_name(rel).split(".", 1)[0]
            # `[program:{{ application_name }}]` with the name set by an inventory pgslots has not: the template's name
            lines = [
                f"[program:{stem}]"
                if line.strip().startswith("[program:") and "${" in line
                else line
                for line in lines
            ]
        repo._text[rel] = "\n".join(lines) + "\n"
        repo._lines.pop(rel, None)
        out.append(rel)
        notes.append(
            f"{rel}: a Jinja template read with the role's variables"
            + (f": {'; '.join(dict.fromkeys(resolved))}" if resolved else "")
            + (
                f"; not resolved (unknown): {', '.join(dict.fromkeys(unresolved))}"
                if unresolved
                else ""
            )
        )
    return out


def _script_paths(line: str, scripts: dict[str, str]) -> str:
    """`command=/webapps/x/bin/gunicorn_start` -> `command=roles/web/templates/gunicorn_start.j2`
    when the role renders that script from its template."""
    for name, rel in scripts.items():
        line = re.sub(r"(?<![\w.-])[^\s=]*/" + re.escape(name) + r"(?=\s|$)", rel, line)
    return line


def evaluate(expression: str, variables: Variables, depth: int = 0) -> tuple[str | None, str, str]:
    """(value, where it was set, the variable's name) of `name`, `name | default(X)`, `name|int`."""
    parts = [p.strip() for p in expression.split("|")]
    name = parts[0]
    fallback = None
    for part in parts[1:]:
        match = DEFAULT_FILTER.match(part)
        if match:
            fallback = match["value"].strip("'\"")
    if not NAME.match(name):
        literal = name.strip("'\"")
        return (literal, "", name) if name != literal or name.isdigit() else (fallback, "", name)
    fallback_where = "the template's default()" if fallback is not None else ""
    if name in variables and depth < 6:
        written, where = variables[name]
        if "{{" not in written:
            return written, where, name
        inner = [evaluate(m["expr"], variables, depth + 1) for m in EXPRESSION.finditer(written)]
        if all(value is not None or NAME.match(inner_name) for value, _, inner_name in inner):
            # `/webapps/{{ application_name }}` with application_name unknown: `/webapps/${application_name}`
            values = iter(v if v is not None else f"${{{n}}}" for v, _, n in inner)
            return EXPRESSION.sub(lambda _: str(next(values)), written), where, name
    return fallback, fallback_where, name


def role_variables(repo: RepoFiles, template: str) -> Variables:
    """The variables a role's template sees, by Ansible's precedence (later wins)."""
    parts = template.split("/")
    role = "/".join(parts[: parts.index("templates")]) if "templates" in parts else ""
    at = f"/{role}".rfind("/roles/")
    prefix = (
        f"/{role}"[1 : at + 1] if at >= 0 else ""
    )  # the playbook folder that holds roles/ and group_vars/
    files = _yaml_in(repo, f"{role}/defaults/")
    group_vars = _yaml_in(repo, f"{prefix}group_vars/")
    files += [p for p in group_vars if _group(p, prefix) == "all"]
    files += [
        p
        for p in group_vars
        if _group(p, prefix) != "all" and PRODUCTION_GROUPS.search(_group(p, prefix))
    ]
    files += _yaml_in(repo, f"{role}/vars/")
    variables: Variables = {}
    for rel in files:
        for doc in load_file(repo, rel) or []:
            if isinstance(doc, dict):
                for key, value in doc.items():
                    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                        variables[str(key)] = (str(value), f"{rel}:{line_of(doc, key)}")
    return variables


def _yaml_in(repo: RepoFiles, folder: str) -> list[str]:
    return sorted(
        p
        for p in repo.paths
        if (p.startswith(folder) and p.endswith((".yml", ".yaml"))) or p == folder.rstrip("/")
    )


def _group(rel: str, prefix: str) -> str:
    """`group_vars/production.yml` and `group_vars/production/vars.yml` -> `production`."""
    return re.sub(r"\.ya?ml$", "", rel[len(prefix) + len("group_vars/") :].split("/", 1)[0])
