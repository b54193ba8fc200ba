"""How many client backends an audit's topology expects, group by group, against what the
server shows.

The server knows a backend's user and application_name, not which process group opened
it, so the match needs a rule that people can satisfy by configuration (Django's
`OPTIONS={"application_name": ...}`, `PGAPPNAME`, one role per service):

1. application_name: the group's name itself, or the name followed by one of ``-_.:/@`` or a
   space and anything (``web``, ``web-7``, ``celery-worker.host3``); case-insensitive; when
   several group names fit, the longest wins (``celery-beat`` before ``celery``);
2. failing that, the same test on the user name (one role per service);
3. failing that, a backend of the application role counts as "(unattributed)", and one of
   any other role as another client, which the topology does not describe.

This probe's own connection is never matched.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from pgslots.deploy.model import ProcessGroup, Topology
from pgslots.live.model import BackendGroup, GroupExpectation

UNATTRIBUTED = "(unattributed)"
_SEPARATORS = "-_.:/@ "


def name_fits(value: str | None, group_name: str) -> bool:
    if not value:
        return False
    value, name = value.lower(), group_name.lower()
    return value == name or (value.startswith(name) and value[len(name)] in _SEPARATORS)


def match_group(
    application: str | None, user: str | None, groups: Sequence[ProcessGroup]
) -> ProcessGroup | None:
    for value in (application, user):
        fitting = [g for g in groups if name_fits(value, g.name)]
        if fitting:
            return max(fitting, key=lambda g: len(g.name))
    return None


def rule_text(group_name: str) -> str:
    pattern = re.escape(group_name)
    return f'application_name (else user) "{group_name}" or "{group_name}<sep>..." (regex ^{pattern}([-_.:/@ ].*)?$)'


def attribute(
    backends: Iterable[BackendGroup],
    topology: Topology,
    app_roles: Iterable[str],
    own_application: str,
) -> tuple[tuple[BackendGroup, ...], tuple[GroupExpectation, ...]]:
    """The backend groups tagged with their topology group, and one expectation per process
    group (plus "(unattributed)" when application-role backends fit none)."""
    groups = topology.groups
    app_roles = set(app_roles)
    matched = {g.name: 0 for g in groups}
    unattributed = 0
    tagged: list[BackendGroup] = []
    for backend in backends:
        group = None
        if backend.application != own_application:
            group = match_group(backend.application, backend.user, groups)
        if group is not None:
            matched[group.name] += backend.count
            tagged.append(_with_group(backend, group.name))
            continue
        if backend.user in app_roles and backend.application != own_application:
            unattributed += backend.count
            tagged.append(_with_group(backend, UNATTRIBUTED))
        else:
            tagged.append(backend)
    expectations = [
        GroupExpectation(
            group=g.name,
            kind=g.kind,
            matched=matched[g.name],
            expected_steady=g.demand.steady,
            expected_worst=g.demand.worst,
            formula=g.demand.formula,
            rule=rule_text(g.name),
        )
        for g in groups
    ]
    if unattributed:
        roles = ", ".join(sorted(app_roles))
        expectations.append(
            GroupExpectation(
                group=UNATTRIBUTED,
                kind="other",
                matched=unattributed,
                expected_steady=None,
                expected_worst=None,
                rule=f"backends of the application role ({roles}) whose application_name and user fit no group",
            )
        )
    return tuple(tagged), tuple(expectations)


def _with_group(backend: BackendGroup, name: str) -> BackendGroup:
    return dataclasses.replace(backend, topology_group=name)
