"""The app's configuration: registers the `pgslots` system checks when Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class PgslotsConfig(AppConfig):
    name = "pgslots.django"
    label = "pgslots"
    verbose_name = "pgslots (PostgreSQL connection slots)"

    def ready(self) -> None:
        from pgslots.django import checks

        checks.register()
