"""The agent desktop's server side: what ``/desktop`` and its API need beyond sign-in and tickets.

- :mod:`ccserver.desktop.settings` — ``[desktop]`` config: pause codes, dispositions, wrap-up, dial contexts.
- :mod:`ccserver.desktop.targets` — pure: transfer targets and dialled numbers, validated, as dialplan extensions.
- :mod:`ccserver.desktop.wrapup` — forced wrap-up: a pause with reason ``wrapup`` after each answered call,
  subscribed to the events hub, timed on the injectable :class:`~ccserver.clock.Clock`.
- :mod:`ccserver.desktop.calls` — AMI side: BlindTransfer / Atxfer on the agent's channel, Originate for
  click-to-dial.
- :mod:`ccserver.desktop.store` — blocking SQL: notes and dispositions on calls, the store's DID, customer
  search, history and prospect merge.
- :mod:`ccserver.desktop.service` — :class:`DesktopService`, what the routes call (checks, audit).
"""
