"""``GET /api/recordings/{call_id}`` — a call's recording for the browser's audio player (supervisor, admin).

The file name comes from the call record (``calls.recording_path``) and is resolved inside ``recordings.dir``
only (:class:`ccserver.recordings.RecordingFiles`: ``../../etc/passwd`` and friends are refused). One byte range
per request (``Range: bytes=…`` → 206 with ``Content-Range``; outside the file → 416 with ``Content-Range: bytes
*/size``), ``Accept-Ranges: bytes`` always. A store manager plays only the calls of their store's queues. The
first request of a playback (no range, or one starting at byte 0) is audited (``recording.play``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from ccserver.db.models import Call, Queue, User
from ccserver.recordings import RangeNotSatisfiable, parse_range
from ccserver.texts import T, message_of
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router

ROLES = ("supervisor",)
MAX_CHUNK = 8 * 1024 * 1024  # an open-ended range is answered with at most this much; the player asks for more


class RecordingRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/api/recordings/{call_id}", self.recording, access="api", roles=ROLES)

    async def recording(self, req: Req) -> Response:
        raw_id = req.path_params["call_id"]
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
            raise HTTPError(400, T("call_id must be a call's number"), field="call_id")
        files = self.ctx.recordings
        factory = self.ctx.session_factory
        if files is None or factory is None:
            raise HTTPError(404, T("no recordings on this server"))
        principal = req.principal
        assert principal is not None

        def lookup() -> tuple[str | None, bool]:
            with factory() as session:
                row = session.execute(select(Call.recording_path, Call.queue).where(Call.id == int(raw_id))).first()
                if row is None:
                    return None, False
                allowed = True
                if principal.role == "supervisor":
                    store_id = session.scalar(select(User.store_id).where(User.id == principal.user_id))
                    if store_id is not None:
                        allowed = row.queue is not None and session.scalar(
                            select(Queue.store_id).where(Queue.name == row.queue)) == store_id
                return row.recording_path, allowed

        name, allowed = await self.ctx.run_blocking(lookup)
        if not allowed:
            raise HTTPError(404, T("no such call"))  # another store's call: not even its existence
        if not name:
            raise HTTPError(404, T("this call has no recording (not recorded, or past retention)"))
        path = files.resolve(name)
        if path is None:
            raise HTTPError(403, T("the recording's stored path leaves the recordings folder; refused"))
        size = await self.ctx.run_blocking(_size, path)
        if size is None:
            raise HTTPError(404, T("the recording file is missing"))
        try:
            wanted = parse_range(req.header("Range"), size)
        except RangeNotSatisfiable as exc:
            raise HTTPError(416, message_of(exc), headers={"Content-Range": f"bytes */{size}",
                                                    "Accept-Ranges": "bytes"}) from None
        first, last = wanted if wanted is not None else (0, size - 1)
        if wanted is not None:
            last = min(last, first + MAX_CHUNK - 1)
        body = await self.ctx.run_blocking(_read, path, first, last - first + 1) if size else b""
        if first == 0:
            await self.ctx.run_blocking(self.ctx.users.audit, "recording.play", principal.user_id,
                                        principal.username, req.client_ip, {"call_id": int(raw_id)})
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store",
                   "Content-Disposition": f'inline; filename="call-{raw_id}{path.suffix}"'}
        if wanted is None:
            return Response(200, body, files.content_type(path), headers)
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return Response(206, body, files.content_type(path), headers)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _read(path: Path, offset: int, length: int) -> Any:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)
