"""Live project events: what websocket subscribers of a project receive."""

from collections.abc import Mapping
from typing import Any, TypedDict

from core.realtime import Update, group_send_on_commit
from projects.models import Project


class ProjectEvent(TypedDict):
    event: str
    project: str
    data: Mapping[str, Any]


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def project_event_publish(project: Project, event: str, data: dict[str, Any]) -> None:
    """Send ``event`` to everyone watching ``project``, after the current transaction commits."""
    group_send_on_commit(*project_event_update(project.id, project.full_name, event, data))


def project_event_update(
    project_id: int, full_name: str, event: str, data: Mapping[str, Any]
) -> Update:
    """The group and message of ``event``, from the project's id and ``owner/name``: for
    callers that announce many changes and read those two columns rather than the project."""
    payload: ProjectEvent = {"event": event, "project": full_name, "data": data}
    return project_group(project_id), {
        "type": "project.event",
        "project_id": project_id,
        "payload": payload,
    }
