"""Supervisor actions: listen / whisper / barge on an agent's call (AMI Originate to the supervisor's phone into
the shipped ``[ccserver-spy]`` context, which runs ChanSpy), force pause or sign out an agent (the agents service),
move a waiting caller's priority (AMI QueueChangePriorityCaller).

- :mod:`ccserver.supervisor.spy` — pure: ChanSpy options per mode, the agent channel prefix, the Originate headers.
- :mod:`ccserver.supervisor.ami` — the AMI side (Originate, QueueChangePriorityCaller) with Asterisk's answers.
- :mod:`ccserver.supervisor.service` — :class:`SupervisorService`, what the HTTP API calls.
"""

from ccserver.supervisor.service import SupervisorService

__all__ = ["SupervisorService"]
