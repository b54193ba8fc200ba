"""WSGI entry point (gunicorn `sync` and `gthread`)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgslots.lab.sampleapp.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from pgslots.lab.sampleapp.apm import instrument_wsgi  # noqa: E402

application = instrument_wsgi(get_wsgi_application())
