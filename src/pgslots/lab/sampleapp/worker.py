"""The Celery application (`celery -A pgslots.lab.sampleapp.worker worker --pool prefork`).

Celery's Django fixup is installed because DJANGO_SETTINGS_MODULE is set: it calls
`django.setup()`, and closes the database connection around every task (Celery >= 5.6
closes unconditionally; <= 5.5 honours CONN_MAX_AGE; domain reference §4.1).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgslots.lab.sampleapp.settings")

from celery import Celery

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["pgslots.lab.sampleapp"])

from pgslots.lab.sampleapp import apm  # noqa: E402 - needs the Celery app configured first

apm.connect_celery()
