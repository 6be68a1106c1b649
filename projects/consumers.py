"""The websocket at /ws/v1/events: subscribe to projects and receive their live events.

Client messages:  {"type": "subscribe", "project": "owner/name"}
                  {"type": "unsubscribe", "project": "owner/name"}
Server messages:  {"type": "hello", "user": ...}, {"type": "subscribed", "project": ...},
                  {"type": "unsubscribed", ...}, {"type": "event", "event": ..., "project": ...,
                  "data": {...}}, {"type": "error", "error": {"code": ..., "message": ...}}
"""

import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core.errors import DomainError
from projects.events import project_group
from projects.models import Project
from projects.policy import ProjectAction, can
from projects.selectors import project_get

# Close code for "authenticate first" (4000-4999 are free for applications).
CLOSE_UNAUTHENTICATED = 4401
# Access is re-checked before forwarding an event, at most this often per project, so a user
# removed from a project stops receiving its events within this many seconds.
RECHECK_SECONDS = 5.0


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.subscriptions: dict[int, str] = {}
        self.checked_at: dict[int, float] = {}
        await self.accept()
        await self.send_json({"type": "hello", "user": user.username})

    async def disconnect(self, code: int) -> None:
        for project_id in list(getattr(self, "subscriptions", {})):
            await self.channel_layer.group_discard(project_group(project_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        address = content.get("project") if isinstance(content, dict) else None
        if kind not in ("subscribe", "unsubscribe") or not isinstance(address, str):
            await self._error(
                "invalid",
                'Send {"type": "subscribe" or "unsubscribe", "project": "owner/name"}.',
            )
            return
        try:
            project = await self._project(address)
        except DomainError as exc:
            await self._error(exc.code, exc.message)
            return
        if kind == "subscribe":
            await self._subscribe(project)
        else:
            await self._unsubscribe(project)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data)
        except ValueError:  # not JSON; the connection stays open
            await self._error("parse_error", "Messages must be JSON objects.")

    async def _subscribe(self, project: Project) -> None:
        self.subscriptions[project.id] = project.full_name
        self.checked_at[project.id] = time.monotonic()
        await self.channel_layer.group_add(project_group(project.id), self.channel_name)
        await self.send_json({"type": "subscribed", "project": project.full_name})

    async def _unsubscribe(self, project: Project) -> None:
        self.subscriptions.pop(project.id, None)
        await self.channel_layer.group_discard(project_group(project.id), self.channel_name)
        await self.send_json({"type": "unsubscribed", "project": project.full_name})

    async def project_event(self, message: dict[str, Any]) -> None:
        """Handler for group messages sent by ``projects.events.project_event_publish``."""
        project_id = int(message["project_id"])
        if project_id not in self.subscriptions or not await self._still_allowed(project_id):
            return
        await self.send_json({"type": "event", **message["payload"]})

    async def _still_allowed(self, project_id: int) -> bool:
        if time.monotonic() - self.checked_at.get(project_id, 0.0) < RECHECK_SECONDS:
            return True
        allowed = await self._may_view(project_id)
        if not allowed:
            self.subscriptions.pop(project_id, None)
            await self.channel_layer.group_discard(project_group(project_id), self.channel_name)
            return False
        self.checked_at[project_id] = time.monotonic()
        return True

    @database_sync_to_async
    def _project(self, address: str) -> Project:
        owner, _, name = address.partition("/")
        return project_get(self.scope["user"], owner, name, ProjectAction.VIEW)

    @database_sync_to_async
    def _may_view(self, project_id: int) -> bool:
        project = Project.objects.with_owner().filter(id=project_id).first()
        return project is not None and can(self.scope["user"], project, ProjectAction.VIEW)

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "error": {"code": code, "message": message}})
