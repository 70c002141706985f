"""Agent sign-in: agents (and the store staff of role ``department``) join and leave app_queue queues, pause and
resume, through AMI QueueAdd / QueueRemove / QueuePause; the desired state lives in SQL and Asterisk's member
list is reconciled to it after every resync.

- :mod:`ccserver.agents.penalties` — pure: a member's penalty in a queue from the agent's skills.
- :mod:`ccserver.agents.reconcile` — pure: the AMI actions that bring Asterisk's members to the sign-ins.
- :mod:`ccserver.agents.store` — blocking SQL: users by extension, sign-in sessions, queue lines.
- :mod:`ccserver.agents.queue_actions` — the AMI side: member actions with Asterisk's answers made explicit.
- :mod:`ccserver.agents.service` — :class:`AgentService`, what the HTTP API, the CLI and later the desktop call.
"""

from ccserver.agents.service import Actor, AgentError, AgentService

__all__ = ["Actor", "AgentError", "AgentService"]
