from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from pgslots.lab.app import TASK_NAME as TOUCH_ITEMS
from pgslots.lab.sampleapp.models import Item


@shared_task(name=TOUCH_ITEMS)
def update_items_seen() -> int:
    """A periodic-style task that touches the database (like the incident's
    `update_async_services_seen_for_pipelines`)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [settings.LAB_TASK_SECONDS])
    return Item.objects.filter(id__lte=5).update(seen_at=timezone.now())
