"""Live project events: what websocket subscribers of a project receive."""

from typing import Any, TypedDict

from core.realtime import group_send_on_commit
from projects.models import Project


class ProjectEvent(TypedDict):
    event: str
    project: str
    data: dict[str, Any]


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def project_event_publish(project: Project, event: str, data: dict[str, Any]) -> None:
    """Send ``event`` to everyone watching ``project``, after the current transaction commits."""
    payload: ProjectEvent = {"event": event, "project": project.full_name, "data": data}
    message = {"type": "project.event", "project_id": project.id, "payload": payload}
    group_send_on_commit(project_group(project.id), message)
