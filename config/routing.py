"""Websocket routes. Later apps add their consumers here."""

from django.urls import path

from jobs.consumers import JobConsumer
from projects.consumers import EventsConsumer

websocket_urlpatterns = [
    path("ws/v1/events", EventsConsumer.as_asgi()),
    path("ws/jobs/<int:id>/", JobConsumer.as_asgi()),
]
