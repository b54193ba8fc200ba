from __future__ import annotations

from django.urls import path

from pgslots.lab.sampleapp import views

urlpatterns = [
    path("items/", views.item_list),
    path("health/", views.health),
]
