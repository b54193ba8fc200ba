"""The list endpoint: authenticate, then a query with a realistic share of server time.

`pg_sleep` stands for the server-side time of a real list query (joins, sorting, a slow
plan) without burning the lab machine's two cores: what matters for slot exhaustion is
how long each request holds its connection, not what the server computes meanwhile.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from pgslots.lab.sampleapp import apm
from pgslots.lab.sampleapp.models import Item


@apm.view
def item_list(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:  # session + user queries (database sessions)
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=403)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [settings.LAB_QUERY_SECONDS])
    items = list(Item.objects.values("id", "name", "price_cents")[:20])
    return JsonResponse(
        {"user": request.user.get_username(), "count": len(items), "results": items}
    )


@apm.view
def health(request: HttpRequest) -> HttpResponse:
    """No database: tells the lab the server is up without taking a slot."""
    return HttpResponse("ok", content_type="text/plain")
