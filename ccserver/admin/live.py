"""What an admin reload re-reads on this node, and which services it hands the result to.

One place for it, so that the server (ccserver/server.py) and the tests wire the same thing: the routing rules
go to the routing service *and* to the agents service (its personal-queue template and fallback queue, used at
sign-in) and the customer directory (the VIP tiers); the IVR menus to the IVR; the pause and disposition codes to
the desktop service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ccserver.admin.reload import ConfigReloads


class LiveSettings:
    def __init__(self, sessions: Any, config: Any, run_blocking: Callable[..., Awaitable[Any]], *,
                 routing: Any = None, agents: Any = None, directory: Any = None, ivr: Any = None,
                 desktop: Any = None) -> None:
        self.sessions = sessions
        self.config = config
        self._run = run_blocking
        self.routing = routing
        self.agents = agents
        self.directory = directory
        self.ivr = ivr
        self.desktop = desktop

    def attach(self, reloads: ConfigReloads) -> None:
        reloads.on_reload(self.reload_rules)
        reloads.on_reload(self.reload_ivr)
        reloads.on_reload(self.reload_codes)

    async def reload_all(self) -> None:
        await self.reload_rules()
        await self.reload_ivr()
        await self.reload_codes()

    async def reload_rules(self) -> None:
        """The admin's routing rules (SQL) override the file's."""
        from ccserver.admin import rules as admin_rules

        rules = await self._run(admin_rules.effective, self.sessions, self.config.section("routing"))
        if self.routing is not None:
            self.routing.replace_rules(rules)
        if self.agents is not None:
            self.agents.rules = rules  # the next sign-in's personal queue and fallback queue
        if self.directory is not None:
            self.directory.vip_tiers = frozenset(rules.vip_tiers)

    async def reload_ivr(self) -> None:
        if self.ivr is None:
            return
        from ccserver.admin import rules as admin_rules

        self.ivr.settings = await self._run(admin_rules.effective_ivr, self.sessions, self.config.section("ivr"))

    async def reload_codes(self) -> None:
        """The admin's pause and disposition codes (SQL) over the file's ``[desktop]``."""
        if self.desktop is None:
            return
        from ccserver.admin import codes

        self.desktop.settings = await self._run(codes.effective, self.sessions, self.config.section("desktop"))
