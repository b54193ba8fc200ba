"""WSGI entry point (gunicorn `sync` and `gthread`)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgslots.lab.sampleapp.settings")

from django.core.wsgi import get_wsgi_application

from pgslots.lab.sampleapp.apm import instrument_wsgi

application = instrument_wsgi(get_wsgi_application())
