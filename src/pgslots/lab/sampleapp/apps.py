from __future__ import annotations

from django.apps import AppConfig


class SampleAppConfig(AppConfig):
    name = "pgslots.lab.sampleapp"
    label = "shop"
    verbose_name = "pgslots lab shop"

    def ready(self) -> None:
        # Like the APM agent's import hooks: wrap the middleware before any handler loads it.
        from pgslots.lab.sampleapp import apm

        apm.connect_django()
