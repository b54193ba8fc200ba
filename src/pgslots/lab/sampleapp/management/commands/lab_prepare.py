"""Create the lab's users, logged-in sessions and items; print the session keys as JSON.

The load driver sends these session cookies, so every request authenticates against the
database exactly like a logged-in user's would.
"""

from __future__ import annotations

import json

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand

from pgslots.lab.sampleapp.models import Item


class Command(BaseCommand):
    help = "Create users, sessions and items for a lab run; print the session keys (JSON)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", type=int, default=20)
        parser.add_argument("--items", type=int, default=200)

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        keys = []
        for i in range(options["users"]):
            user, _ = user_model.objects.get_or_create(username=f"user{i}")
            user.set_unusable_password()
            user.save()
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            keys.append(session.session_key)
        if not Item.objects.exists():
            Item.objects.bulk_create(
                Item(name=f"item {i}", price_cents=100 + i) for i in range(options["items"])
            )
        self.stdout.write(json.dumps({"session_keys": keys}))
