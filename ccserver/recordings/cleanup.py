"""Retention: recordings older than ``recordings.retention_days`` are deleted, once per cluster per day.

The job walks the folder's ``YYYY/MM/DD`` day folders (the names :mod:`.policy` gives) and removes every day
strictly older than the cut-off (UTC date of now − retention days), then clears ``calls.recording_path`` of the
calls whose file went (so the API answers 404 "expired", not a missing file). ``retention_days = 0`` keeps
everything. Each day's run holds the lease ``ccserver:job:recordings-cleanup:<UTC date>`` (ccserver/cluster.py);
without Redis it simply runs. Idempotent: a second run finds nothing left to remove.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("ccserver.recordings")

JOB = "recordings-cleanup"
CHECK_SECONDS = 3600.0


def expired_days(folder: Path, cutoff: date) -> list[Path]:
    """The day folders ``YYYY/MM/DD`` under ``folder`` dated before ``cutoff`` (anything else is left alone)."""
    out: list[Path] = []
    if not folder.is_dir():
        return out
    for year in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 4):
        for month in sorted(p for p in year.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 2):
            for day in sorted(p for p in month.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 2):
                try:
                    when = date(int(year.name), int(month.name), int(day.name))
                except ValueError:
                    continue
                if when < cutoff:
                    out.append(day)
    return out


def remove_expired(folder: Path, cutoff: date, session_factory: Callable[[], Any] | None) -> dict[str, int]:
    """Blocking: delete the expired day folders and clear their calls' ``recording_path``."""
    days = expired_days(folder, cutoff)
    files = 0
    prefixes = []
    for day in days:
        files += sum(1 for p in day.rglob("*") if p.is_file())
        prefixes.append(day.relative_to(folder).as_posix() + "/")
        shutil.rmtree(day)
    for month in {d.parent for d in days}:  # empty month / year folders go too
        for empty in (month, month.parent):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    cleared = 0
    if session_factory is not None and prefixes:
        from sqlalchemy import or_, update

        from ccserver.db.models import Call

        with session_factory() as session:
            result = session.execute(update(Call).where(or_(*(Call.recording_path.startswith(p) for p in prefixes)))
                                     .values(recording_path=None))
            session.commit()
            cleared = int(getattr(result, "rowcount", 0) or 0)
    return {"days": len(days), "files": files, "calls": cleared}


class RecordingCleanup:
    """The periodic job: every hour, today's occurrence (once per cluster per UTC date) removes what expired.
    ``clock``: a ``ccserver.clock.Clock``; ``cluster``: a ``ClusterJobs`` or None (run here)."""

    def __init__(self, folder: str | Path, retention_days: int, run_blocking: Callable[..., Awaitable[Any]],
                 clock: Any, *, cluster: Any = None, session_factory: Callable[[], Any] | None = None) -> None:
        self.folder = Path(folder)
        self.retention_days = retention_days
        self._run = run_blocking
        self._clock = clock
        self._cluster = cluster
        self._sessions = session_factory
        self._task: asyncio.Task[None] | None = None

    def cutoff(self) -> date:
        today = datetime.fromtimestamp(self._clock.time(), UTC).date()
        return today - timedelta(days=self.retention_days)

    async def clean(self) -> dict[str, int]:
        if self.retention_days <= 0:
            return {"days": 0, "files": 0, "calls": 0}
        cutoff = self.cutoff()
        result: dict[str, int] = await self._run(remove_expired, self.folder, cutoff, self._sessions)
        if result["days"]:
            log.info("recordings before %s removed: %d day(s), %d file(s), %d call(s) cleared", cutoff,
                     result["days"], result["files"], result["calls"])
        return result

    async def tick(self) -> dict[str, int] | None:
        """Today's occurrence: run here, or None when another node ran (or runs) it."""
        if self._cluster is None:
            return await self.clean()
        slot = datetime.fromtimestamp(self._clock.time(), UTC).date().isoformat()
        run = await self._cluster.run(JOB, self.clean, slot=slot, wait=False)
        return run.result if run.ran else None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - disk, SQL or Redis briefly away: the next hour tries again
                log.warning("recordings clean-up failed (%s); trying again in %g s", exc, CHECK_SECONDS)
            await self._clock.sleep(CHECK_SECONDS)

    def start(self) -> None:
        if self._task is None and self.retention_days > 0:
            self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
