from __future__ import annotations

from django.db import models


class Item(models.Model):
    """What the list endpoint lists and the task touches."""

    name = models.CharField(max_length=100)
    price_cents = models.IntegerField(default=0)
    seen_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["id"]
