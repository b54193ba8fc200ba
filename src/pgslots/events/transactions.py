"""Transaction names as the APM agents write them, and what kind of process ran each: one
home for the events' notes ("failed before the view ran") and the diagnosis's attribution
to process groups, so that both read `celery:tasks.update` as the same worker.

* New Relic: `WebTransaction/...` (views, middleware, URIs) is a web request;
  `OtherTransaction/Celery/<task>` a Celery task; other `OtherTransaction/...` (management
  commands, scripts) neither.
* Sentry and logs: a URL route (`/api/...`) is web; `celery:<task>` or a dotted name under a
  `tasks` module (`shop.tasks.update`) is a Celery task.

A web transaction still named after a middleware (`...Middleware.process_view`) failed
before its view ran: New Relic renames the transaction to the view only when the view is
entered (domain reference §3.4).
"""

from __future__ import annotations

import re

from pgslots.vocabulary import Term


class TransactionKind(Term):
    WEB = "web"
    WORKER = "worker"
    OTHER = "other"  # background work that is neither a web request nor a Celery task
    UNATTRIBUTED = "unattributed"  # no transaction name (server logs have none)


NR_WEB = "WebTransaction/"
NR_WEB_FUNCTION = "WebTransaction/Function/"
NR_CELERY = "OtherTransaction/Celery/"
NR_OTHER = "OtherTransaction/"
CELERY_PREFIXES = (NR_CELERY, "celery:")
_CELERY_TASK = re.compile(r"(^|\.)tasks?\.[A-Za-z_]\w*$")
_MIDDLEWARE = re.compile(r"middleware[^/]*$", re.IGNORECASE)


def kind(name: str | None) -> TransactionKind:
    """Which kind of process ran a transaction of this name."""
    if not name:
        return TransactionKind.UNATTRIBUTED
    if name.startswith((NR_WEB, "/")):
        return TransactionKind.WEB
    if name.startswith(CELERY_PREFIXES) or _CELERY_TASK.search(name):
        return TransactionKind.WORKER
    return TransactionKind.OTHER


def before_view(name: str | None) -> bool:
    """A web transaction still named after a middleware: the view had not been entered."""
    return name is not None and name.startswith(NR_WEB) and bool(_MIDDLEWARE.search(name))


def in_view(name: str | None) -> bool:
    """A web transaction named after its view function: the request reached the view."""
    return name is not None and name.startswith(NR_WEB_FUNCTION) and not before_view(name)


def short(name: str) -> str:
    """The name without the agent's prefix: `OtherTransaction/Celery/shop.tasks.x` -> `shop.tasks.x`."""
    for prefix in (NR_WEB_FUNCTION, *CELERY_PREFIXES):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name
