"""ASGI entry point (`gunicorn -k uvicorn_worker.UvicornWorker`, `uvicorn --workers`)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgslots.lab.sampleapp.settings")

from django.core.asgi import get_asgi_application

from pgslots.lab.sampleapp.apm import instrument_asgi

application = instrument_asgi(get_asgi_application())
