"""The websocket at /ws/jobs/<id>/: one job's log and status, live, until it ends.

Connect with ``?offset=N`` (default 0) to receive the log from byte N: first what is already
there, then the job's current status, then both as they change, so a client that connects late
(or reconnects with the ``end`` of the last log message it got) misses nothing.

Server messages:  {"event": "log", "offset": first byte, "end": next byte, "text": ...}
                  {"event": "status", "job": ..., "number": ..., "status": ..., "previous": ...,
                   "reason": ..., "exit_code": ...}   ("previous" is "" in the one sent on connect)
                  {"event": "end", "status": ...}     (the whole log was sent; the server closes)
Close codes:      4400 a bad offset, 4401 not signed in, 4403 access lost while watching,
                  4404 no such job (or one the user may not see). Clients send nothing.
"""

import re
import time
from typing import Any, Literal, TypedDict
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core.errors import DomainError, NotFound
from jobs.logs import LogSlice, log_read
from jobs.models import FINISHED, Job
from jobs.status import JobStatusPayload, job_group
from projects.consumers import CLOSE_UNAUTHENTICATED
from projects.policy import ProjectAction, authorize_project, can

CLOSE_INVALID = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_CODES = {
    "not_authenticated": CLOSE_UNAUTHENTICATED,
    "permission_denied": CLOSE_FORBIDDEN,
    "not_found": CLOSE_NOT_FOUND,
}
# Access is re-checked before forwarding an event, at most this often, so a user removed from
# the job's project stops receiving within this many seconds.
RECHECK_SECONDS = 5.0
# The most log bytes in one message: a late joiner to a long log gets it in pieces.
LOG_MESSAGE_BYTES = 256 * 1024
_OFFSET = re.compile(r"[0-9]{1,18}")


class LogMessage(TypedDict):
    event: Literal["log"]
    offset: int
    end: int
    text: str


class EndMessage(TypedDict):
    event: Literal["end"]
    status: str


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        offset = requested_offset(self.scope.get("query_string", b""))
        if offset is None:
            await self.close(code=CLOSE_INVALID)
            return
        try:
            self.job, self.job_name = await self._job(int(self.scope["url_route"]["kwargs"]["id"]))
        except DomainError as exc:
            await self.close(code=CLOSE_CODES.get(exc.code, CLOSE_FORBIDDEN))
            return
        self.offset, self.status, self.ended = offset, "", False
        self.checked_at = time.monotonic()
        # Join before reading: whatever changes after the reads below then arrives as a
        # message, so nothing falls between what was read and what is pushed.
        await self.channel_layer.group_add(job_group(self.job.id), self.channel_name)
        await self.accept()
        await self._send_status(await self._current_status())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "job"):
            await self.channel_layer.group_discard(job_group(self.job.id), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients have nothing to say on this socket; what they send is ignored."""

    async def job_log(self, message: dict[str, Any]) -> None:
        """Handler for ``jobs.logs.log_append``'s messages: bytes were added to the log."""
        if not self.ended and await self._still_allowed():
            await self._send_log(final=False)

    async def job_event(self, message: dict[str, Any]) -> None:
        """Handler for ``jobs.status.job_transition``'s messages: the job's status changed."""
        payload = message["payload"]
        # The same status twice is a change that happened before connect, already sent then.
        if self.ended or payload["status"] == self.status or not await self._still_allowed():
            return
        await self._send_status(payload)

    async def _send_status(self, payload: JobStatusPayload) -> None:
        finished = payload["status"] in FINISHED
        # The log comes first: on connect that is the backlog; at the end, its last bytes.
        await self._send_log(final=finished)
        await self.send_json({"event": "status", **payload})
        self.status = payload["status"]
        if finished:
            await self._end()

    async def _send_log(self, *, final: bool) -> None:
        """Send the log from ``self.offset`` as far as it goes now. Unless ``final``, a character
        whose bytes are not all there yet waits for them, so no character is broken in two."""
        while True:
            found = await self._read_log()
            data = found.data if final else found.data[: utf8_complete(found.data)]
            if not data:
                return
            message: LogMessage = {
                "event": "log",
                "offset": self.offset,
                "end": self.offset + len(data),
                "text": data.decode("utf-8", errors="replace"),
            }
            await self.send_json(message)
            self.offset += len(data)
            if len(found.data) < LOG_MESSAGE_BYTES:
                return

    async def _end(self) -> None:
        message: EndMessage = {"event": "end", "status": self.status}
        await self.send_json(message)
        await self._leave(code=1000)

    async def _leave(self, code: int) -> None:
        self.ended = True
        await self.channel_layer.group_discard(job_group(self.job.id), self.channel_name)
        await self.close(code=code)

    async def _still_allowed(self) -> bool:
        if time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        if not await self._may_view():
            await self._leave(code=CLOSE_FORBIDDEN)
            return False
        self.checked_at = time.monotonic()
        return True

    @database_sync_to_async
    def _job(self, job_id: int) -> tuple[Job, str]:
        job = Job.objects.select_related("project__owner_user", "project__owner_team")
        found = job.filter(id=job_id).first()
        if found is None:
            raise NotFound(f"There is no job {job_id}.")
        authorize_project(self.scope["user"], found.project, ProjectAction.VIEW)
        return found, str(found)

    @database_sync_to_async
    def _may_view(self) -> bool:
        job = Job.objects.select_related("project").filter(id=self.job.id).first()
        return job is not None and can(self.scope["user"], job.project, ProjectAction.VIEW)

    @database_sync_to_async
    def _current_status(self) -> JobStatusPayload:
        status, reason, exit_code = (
            Job.objects.filter(id=self.job.id)
            .values_list("status", "status_reason", "exit_code")
            .get()
        )
        return {
            "job": self.job_name,
            "number": self.job.number,
            "status": status,
            "previous": "",
            "reason": reason,
            "exit_code": exit_code,
        }

    @database_sync_to_async
    def _read_log(self) -> LogSlice:
        return log_read(self.job, self.offset, limit=LOG_MESSAGE_BYTES)


def requested_offset(query_string: bytes) -> int | None:
    """The ``offset`` the client asked for: 0 if none, None if it is not a byte offset."""
    values = parse_qs(query_string.decode("latin-1")).get("offset")
    if not values:
        return 0
    return int(values[-1]) if _OFFSET.fullmatch(values[-1]) else None


def utf8_complete(data: bytes) -> int:
    """How many bytes of ``data`` end on a UTF-8 character boundary."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0b1100_0000 != 0b1000_0000:  # a character starts here
            return len(data) - back if _utf8_length(byte) > back else len(data)
    return len(data)  # four continuation bytes in a row: not UTF-8 anyway


def _utf8_length(lead: int) -> int:
    if lead >= 0b1111_0000:
        return 4
    if lead >= 0b1110_0000:
        return 3
    return 2 if lead >= 0b1100_0000 else 1
