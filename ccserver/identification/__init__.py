"""Caller identification as a service (see :mod:`ccserver.identification.service`)."""

from ccserver.identification.service import (
    FALLBACKS,
    TIMED_OUT,
    Directory,
    IdentificationService,
    Identified,
    await_cache,
    race,
)

__all__ = ["FALLBACKS", "TIMED_OUT", "Directory", "Identified", "IdentificationService", "await_cache", "race"]
