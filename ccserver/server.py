"""`ccserver run`: one event loop (Twisted's asyncio reactor) serving HTTP, FastAGI and AMI.

The asyncio reactor is installed here, first thing, before anything imports twisted.internet.reactor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import signal
from typing import Any

from ccserver import __version__
from ccserver.ami.link import asterisk_status
from ccserver.components import ListenError
from ccserver.config import Config
from ccserver.redact import mask_url

log = logging.getLogger("ccserver")

# At shutdown, how long the FastAGI sessions in flight may take to finish before they are cut: a routed call
# needs well under callrouting.deadline_seconds; a survey waiting for its digit is the longest.
AGI_SHUTDOWN_GRACE = 5.0
AGENT_SWEEP_SECONDS = 30.0  # how often sign-ins of expired web logins and departed users are ended


class SchemaNotReady(RuntimeError):
    pass




def check_schema(database_url: str) -> None:
    from sqlalchemy.exc import OperationalError

    from ccserver.db.migrate import schema_status

    try:
        status = schema_status(database_url)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        raise SchemaNotReady(f"cannot open the database ({reason}); create it with `ccserver db upgrade`") from None
    if status == "empty":
        raise SchemaNotReady("the database has no ccserver schema: run `ccserver db upgrade` first")
    if status == "outdated":
        raise SchemaNotReady("the database schema is outdated: run `ccserver db upgrade` first")
    if status != "up_to_date":
        raise SchemaNotReady(f"the database schema is not one this ccserver knows ({status}); is it newer?")


def _port_of(listening: Any) -> int:
    """The bound port (the configured one, or the one the OS picked for port 0)."""
    return int(listening.getHost().port)


# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms). The loop shares the process
# with worker threads running Python (SQL through SQLAlchemy: the call records, web pages, the routing data's
# refresh): when one of them holds the GIL as a call's bytes arrive, the loop waits for it up to the whole interval.
# Measured with a pure-Python worker beside an idle loop: the loop's wake-up delay p50 5.8 / p99 11.6 ms at 5 ms,
# 1.3 / 4.9 ms at 0.5 ms. But 0.5 ms also makes the loop hand the GIL back every 0.5 ms while a worker wants it:
# the IVR booking benchmark (tickets written by SQL threads beside 50 sessions) went from slowest-decision p99
# ~1 ms at 2 or 5 ms to 5-6 ms at 0.5 ms, with 30 % more CPU per session; the routed call's hit p99 moved
# 0.1-0.2 ms the other way. 2 ms keeps the wait bounded without the churn.
SWITCH_INTERVAL_SECONDS = 0.002


def install_reactor() -> Any:
    """Twisted's asyncio reactor on a new loop, first thing in a server process; also sets the GIL switch interval
    (``SWITCH_INTERVAL_SECONDS``), which every process serving calls on one loop beside worker threads wants."""
    import sys

    from twisted.internet import asyncioreactor

    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


YOUNG_GC_THRESHOLD = 10_000


def freeze_startup_objects(result: Any = None) -> Any:
    """Move everything alive after start-up (modules, config, routing data) out of the garbage collector's
    reach. A full collection walked ~115,000 such objects — a 20–60 ms stall of the loop, and of every call
    in flight — though none of them is garbage; now it walks what the calls left behind. Reference counting
    still frees frozen objects as usual (a replaced routing-data snapshot, say). Fires through ``result``
    so it can sit in a Deferred chain.

    Then the youngest generation is collected after 10,000 net new objects instead of 700: nearly everything the
    event path allocates (AMI messages, events) is freed by reference counting within a read, yet a busy AMI
    stream tripped ~230 young collections (and ~20 older ones) per 34,000 messages, ~50 ms that found almost
    no garbage (measured with ``gc.callbacks`` under bench_ami_process); now a handful."""
    import gc

    gc.collect()
    gc.freeze()
    young, *older = gc.get_threshold()
    if young and young < YOUNG_GC_THRESHOLD:
        gc.set_threshold(YOUNG_GC_THRESHOLD, *older)
    log.debug("froze %d start-up objects out of the garbage collector", gc.get_freeze_count())
    return result


def screenpop_lookup(sessions: Any, directory: Any) -> Any:
    """The customer lookup on the event loop for the look-ups without a call (screen pop, the desktop's search,
    the lookup API): 2 connections of its own, so a burst of offered calls never queues in front of a routed
    call's lookup; None on SQLite (the worker-thread path)."""
    from ccserver.customers.directory import CustomerDirectory
    from ccserver.customers.loop_lookup import LoopLookup

    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql" or not isinstance(directory, CustomerDirectory):
        return None
    return LoopLookup.from_engine(bind, directory, max_connections=2)


def run_server(config: Config, agi_handlers: dict[str, Any] | None = None) -> int:
    check_schema(config.database_url)
    reactor = install_reactor()

    from agents_ui import Pages
    from ccserver.auth import TokenSigner
    from ccserver.bridge import as_deferred, wait
    from ccserver.db.engine import make_engine, session_factory
    from ccserver.login_limits import MemoryLoginLimiter, RedisLoginLimiter
    from ccserver.passwords import PasswordWork
    from ccserver.web.app import build_site
    from ccserver.web.context import WebContext, default_sessions
    from ccserver.web.sessions import RedisRevocations
    from ccserver.web.sql_users import SQLUserStore

    engine = make_engine(config.database_url)
    sessions = session_factory(engine)
    from ccserver.bridge import BlockingPool

    # The thread pool for blocking SQL: ``await blocking.run(fn, …)`` from asyncio code (ccserver/bridge.py).
    blocking = BlockingPool(16)
    blocking.serve_default(asyncio.get_event_loop())  # asyncio.to_thread (the record writers) uses it too
    # The same pool, as Deferreds, for the pieces that chain on them (the routing data refresher, callback
    # promises, the nightly job).

    def run_blocking(fn, *args, **kwargs):
        return as_deferred(blocking.run(fn, *args, **kwargs))

    async def database_probe() -> str:
        def ping() -> str:
            from sqlalchemy import text

            with engine.connect() as conn:
                conn.execute(text("select 1"))
            return "ok"

        return await blocking.run(ping)

    probes: dict[str, Any] = {"database": database_probe}
    redis_client = None
    if config.redis.url:
        from ccserver.redis_pool import make_redis_client

        # A blocking pool: a burst (1,000 sockets opening at once) waits for a connection instead of failing.
        redis_client = make_redis_client(config.redis.url, max_connections=config.redis.max_connections,
                                         pool_timeout=config.redis.pool_timeout)

        async def redis_probe() -> str:
            await redis_client.ping()
            return "ok"

        probes["redis"] = redis_probe

    telephony = None
    if config.ami_servers():
        from ccserver.telephony import Telephony

        telephony = Telephony(config, reactor, sessions, redis=redis_client)

        async def ami_probe() -> str:
            # Every server this node consumes must be logged in; followers report what they follow.
            clients = [telephony.ami.clients[name] for name in sorted(telephony.leading)]
            if not clients:
                return "following" if telephony.relay is not None else "disconnected"
            down = [c.server for c in clients if not c.connected]
            return "connected" if not down else "disconnected"

        probes["ami"] = ami_probe

    # Caller identification and routing: the number -> customer cache lives in Redis when there is one, so it
    # is shared by every node and invalidated once; otherwise in this process.
    from ccserver.asterisk.prompts import check_prompts
    from ccserver.callrouting import RoutingRuntime, RoutingSettings
    from ccserver.callrouting.wiring import make_directory
    from ccserver.customers.cache import MemorySummaryCache, RedisSummaryCache
    from ccserver.customers.resp import RespClient
    from ccserver.customers.scores import NightlyRecompute
    from routing.value import TierShares, ValueWeights

    # The lookup on every call's path goes through the lean Twisted client (resp.py); the rest through redis-py.
    call_path_redis = RespClient.for_url(reactor, config.redis.url) if redis_client is not None else None
    cache = (RedisSummaryCache(redis_client, call_path=call_path_redis) if redis_client is not None
             else MemorySummaryCache())
    routing_settings = RoutingSettings.from_config(config)
    directory = make_directory(sessions, routing_settings.routing_rules())
    routing = RoutingRuntime.from_config(config, sessions, reactor=reactor, run_blocking=run_blocking,
                                         tracker=telephony.tracker if telephony is not None else None, cache=cache,
                                         directory=directory, settings=routing_settings)
    # Who a number is without a call to route (screen pop, the desktop's search, /api/customers/lookup): the same
    # identification service over the same cache and directory, with loop-lookup connections of its own, so a
    # burst of pops never queues in front of a routed call's lookup. The screen pop service closes it.
    from ccserver.identification import IdentificationService

    lookups = IdentificationService(directory, cache, region=routing_settings.default_region,
                                    run_blocking=run_blocking, clock=reactor, max_pending_lookups=4,
                                    loop_lookup=screenpop_lookup(sessions, directory))
    # The IVR takes the `incoming` FastAGI script: DIDs that [ivr] sends to a menu run it, and hand the call back to
    # routing's decision for the line the caller chose; every other call goes straight to routing. Its tickets
    # (ivr/ports.py TicketsPort) are the tickets service's, given below once that is built.
    from ivr.service import IVRService
    from ivr.settings import IVRSettings

    ivr_settings = IVRSettings.from_dict(config.section("ivr"))
    ivr = IVRService(routing.service, ivr_settings, clock=reactor, run_blocking=blocking.run, session_factory=sessions,
                     tickets=None)
    # Bulk changes (a full score recompute) drop the cached customers. Jobs that must run once per cluster hold
    # a Redis lease; without Redis they simply run. A recompute run by another process (`ccserver scores
    # recompute`) sweeps Redis itself; without Redis this node watches for it.
    from ccserver.cluster import ClusterJobs
    from ccserver.customers.changes import CutoffsWatcher, Invalidator, latest_cutoffs_id

    loop = asyncio.get_event_loop()
    invalidator = Invalidator(cache, loop)
    cluster = ClusterJobs(redis_client)
    nightly = None
    if config.scores.nightly_at:
        hour, minute = (int(part) for part in config.scores.nightly_at.split(":"))
        nightly = NightlyRecompute(sessions, clock=reactor, at=dt.time(hour, minute), tz=config.server.time_zone,
                                   weights=ValueWeights(**config.scores.weights),
                                   shares=TierShares(**config.scores.tier_shares), run_in_thread=run_blocking,
                                   cluster=cluster, after=lambda _summary: invalidator.everything())
    watcher = (CutoffsWatcher(lambda: blocking.run(latest_cutoffs_id, sessions), invalidator)
               if redis_client is None else None)
    watching: list[asyncio.Future[None]] = []

    # Agent sign-in (QueueAdd/QueueRemove/QueuePause): needs an Asterisk to talk to.
    agents = None
    supervisor = None
    sweeper = None
    if telephony is not None:
        from twisted.internet.task import LoopingCall

        from ccserver.agents import AgentService, reconcile_after_resync
        from ccserver.agents.queue_actions import AMIQueueActions
        from ccserver.agents.store import AgentStore

        loop = asyncio.get_event_loop()

        agents = AgentService(AgentStore(sessions), AMIQueueActions(telephony.ami, loop),
                              rules=routing_settings.routing_rules(), run_blocking=blocking.run,
                              servers=telephony.server_names, default_server=config.callrouting.server,
                              tracker=telephony.tracker)
        # Supervisor actions: listen / whisper / barge (Originate into ChanSpy), force pause / sign out, priority.
        from ccserver.supervisor import SupervisorService
        from ccserver.supervisor.ami import AMISupervisorActions

        supervisor = SupervisorService(agents, AMISupervisorActions(telephony.ami, loop), run_blocking=blocking.run,
                                       tracker=telephony.tracker)
        # After every resync this node ran (it leads that Asterisk), Asterisk's members follow the sign-ins.
        reconcile_after_resync(telephony.hub, agents, telephony.leading)

        def swept(future: asyncio.Future[int]) -> None:
            if not future.cancelled() and future.exception() is not None:
                log.error("agent sweep failed: %r", future.exception())

        def sweep() -> None:
            # Sign-ins whose web login expired or whose user left: signed out of every queue.
            asyncio.ensure_future(agents.sweep()).add_done_callback(swept)

        sweeper = LoopingCall(sweep)
        sweeper.clock = reactor

    # Tickets: the service the web, the IVR, the desktop and the dialer call; the webhook deliverer, the SLA alarm
    # job (once per cluster: a lease per tick, kept a few ticks) and call backs for abandoned callers.
    from ccserver.clock import LoopClock
    from ccserver.events import EventHub
    from ccserver.tickets import NotifySettings, TicketService, TicketSettings
    from ccserver.tickets.abandoned import AbandonedCallers
    from ccserver.tickets.alarms import SlaAlarms
    from ccserver.tickets.notify import Outbox, WebhookDeliverer, http_post

    ticket_settings = TicketSettings.from_config(config)
    notify = NotifySettings.from_config(config)
    clock = LoopClock()
    deliverer = (WebhookDeliverer(sessions, blocking.run, notify.webhook_url, notify.webhook_secret, http_post(),
                                  clock, retry_delays=notify.retry_delays, timeout=notify.timeout_seconds)
                 if notify.enabled else None)
    tickets = TicketService(sessions, ticket_settings, blocking.run, clock=clock,
                            calendars=lambda: routing.refresher.current.calendars, invalidator=invalidator,
                            outbox=Outbox(notify.enabled), on_notify=deliverer.wake if deliverer else None)
    ivr.tickets = tickets  # the IVR files breakdowns and complaints, and books, through the tickets service
    # The wallboard hears SLA alarms on the call-events hub (a hub of its own when there is no Asterisk).
    ticket_hub = telephony.hub if telephony is not None else EventHub()
    sla_alarms = SlaAlarms(tickets.store, blocking.run, clock, publish=ticket_hub.publish,
                           cluster=ClusterJobs(redis_client, keep_done=3 * ticket_settings.check_seconds),
                           after=deliverer.wake if deliverer else None)
    if telephony is not None:
        AbandonedCallers(tickets, region=config.phone.default_region,
                         owns=telephony.owns).subscribe(telephony.hub)

    def start_tickets() -> None:
        if telephony is None:
            ticket_hub.start()
        sla_alarms.start()
        if deliverer is not None:
            deliverer.start()

    async def stop_tickets() -> None:
        sla_alarms.stop()
        if deliverer is not None:
            deliverer.stop()
        if telephony is None:
            await ticket_hub.stop(1.0)
    # Queue and agent KPIs (ccserver/kpi): counted from the hub for the Asterisk servers this node leads, kept
    # live in Redis for every node, each 15-minute interval's rows written to SQL when it ends. Subscribed now, so
    # the first Resynced after the AMI connects is counted; callback requests reach it from the routing service.
    from ccserver.kpi import KpiSettings
    from ccserver.kpi.service import KpiService
    from ccserver.kpi.store import KpiStore

    kpi = KpiService(KpiSettings.from_config(config), store=KpiStore(sessions), run_blocking=blocking.run,
                     redis=redis_client, leading=telephony.leading if telephony is not None else None,
                     servers=telephony.server_names if telephony is not None else (),
                     tracker=telephony.tracker if telephony is not None else None)
    if telephony is not None:
        kpi.subscribe(telephony.hub)
    routing.service.on_callback.append(kpi.note_callback)
    # Outbound campaigns (ccserver/campaigns): the service behind /api/campaigns and /api/dnc.
    from ccserver.campaigns.service import CampaignService
    from ccserver.campaigns.settings import CampaignSettings

    campaign_settings = CampaignSettings.from_config(config)
    campaigns = CampaignService(sessions, blocking.run, settings=campaign_settings, clock=clock,
                                default_region=config.phone.default_region, default_zone=config.server.time_zone)
    campaigns.invalidator = invalidator  # a disposition rescores the customer (ccserver/customers/changes.py)
    campaigns.identification = lookups  # a CSV's numbers are linked to customers as calls from them would be
    # Due-date campaigns take the customers newly due once a day (one node per cluster with Redis).
    from ccserver.campaigns.refresh import DueRefresh

    due_refresh = DueRefresh(campaigns, clock=clock, zone=config.server.time_zone,
                             hour=campaign_settings.refresh_hour, redis=redis_client,
                             node_id=telephony.node_id if telephony is not None else "node")
    # The dialer (ccserver/dialer): with an Asterisk only; one node dials (the Redis lease), over the servers whose
    # AMI it holds (campaigns.servers / store_servers).
    dialer: Any = None
    if telephony is not None and telephony.server_names:
        from ccserver.dialer.engine import AmiOriginator, Dialer
        from ccserver.dialer.leases import MemoryContactLeases, RedisContactLeases
        from ccserver.dialer.store import DialerStore

        campaign_settings.check_servers(telephony.server_names)
        dialer = Dialer(DialerStore(sessions), AmiOriginator(telephony.ami),
                        RedisContactLeases(redis_client) if redis_client is not None else MemoryContactLeases(),
                        run_blocking=blocking.run, settings=campaign_settings, clock=clock,
                        tracker=telephony.tracker, redis=redis_client, node_id=telephony.node_id,
                        server=telephony.server_names[0], default_zone=config.server.time_zone,
                        servers=list(campaign_settings.servers) or telephony.server_names)
        dialer.subscribe(telephony.hub)
        campaigns.on_forbid.append(dialer.forbid)

    # The agent desktop (ccserver/desktop): forced wrap-up after each answered call (from the hub, for the
    # Asterisk servers this node leads), transfers and click-to-dial over AMI, notes and dispositions in SQL.
    from ccserver.desktop.service import DesktopService
    from ccserver.desktop.settings import DesktopSettings
    from ccserver.desktop.store import DesktopStore

    desktop_settings = DesktopSettings.from_config(config)
    wrapup = desktop_calls = None
    if telephony is not None and agents is not None:
        from ccserver.desktop.calls import AMIDesktopCalls
        from ccserver.desktop.wrapup import ForcedWrapUp

        wrapup = ForcedWrapUp(agents, desktop_settings.wrapup_seconds, clock, blocking.run,
                              leads=telephony.leading.__contains__)
        wrapup.subscribe(telephony.hub)
        desktop_calls = AMIDesktopCalls(telephony.ami, asyncio.get_event_loop())
    desktop_store = DesktopStore(sessions, time_zone=config.server.time_zone)
    desktop = DesktopService(desktop_settings, desktop_store, blocking.run,
                             region=config.phone.default_region, agents=agents, calls=desktop_calls,
                             tracker=telephony.tracker if telephony is not None else None, tickets=tickets,
                             wrapup=wrapup, clock=clock, identification=lookups, invalidator=invalidator)
    # Preview mode of campaigns (ccserver/campaigns/preview.py): the agent's next contact, dialled through the desktop.
    from ccserver.campaigns.preview import PreviewService

    preview = PreviewService(campaigns, desktop, default_zone=config.server.time_zone,
                             node_id=telephony.node_id if telephony is not None else "node")
    # The wallboard: one snapshot per update (coalesced, encoded once for every client) from the live views, the
    # interval rows and the SLA alarms; every event on the hub marks it dirty.
    from ccserver.events import TicketSlaAlarm
    from ccserver.kpi.views import LiveViews
    from ccserver.tickets.alarms import current_alarms
    from ccserver.wallboard import WallboardPublisher, WallboardSource

    board = config.wallboard
    wallboard_source = WallboardSource(
        LiveViews(kpi, telephony.tracker if telephony is not None else None, sessions, blocking.run, config),
        KpiStore(sessions), blocking.run, config.server.time_zone, target=board.service_level_target,
        vip_tiers=tuple(board.vip_tiers), clock=clock, link=functools.partial(asterisk_status, telephony),
        restore=lambda now, since: blocking.run(
            current_alarms, tickets.store, dt.datetime.fromtimestamp(now, dt.UTC),
            dt.datetime.fromtimestamp(since, dt.UTC)))
    wallboard = WallboardPublisher(wallboard_source.build, clock, max_rate=board.max_updates_per_second)
    ticket_hub.subscribe("wallboard-alarms", wallboard_source.on_alarm, kinds=(TicketSlaAlarm,))
    wallboard.attach(ticket_hub)

    # Recordings: CC_RECORD in the routing answer where config says so; the retention clean-up once per cluster.
    from ccserver.recordings import RecordingFiles, RecordingPolicy
    from ccserver.recordings.cleanup import RecordingCleanup

    recording_policy = RecordingPolicy.from_config(config)
    if recording_policy.enabled:
        routing.service.recording_policy = recording_policy
    recordings_cleanup = RecordingCleanup(recording_policy.dir, recording_policy.retention_days, blocking.run, clock,
                                          cluster=ClusterJobs(redis_client), session_factory=sessions)
    # Screen pop (screenpop/): the websocket listener on ws.listen, pops from the hub for the servers this node
    # leads, fanned out to every node through Redis.
    from ccserver.callrouting.decision_memo import DecisionMemo
    from screenpop.wiring import build_screenpop

    decision_memo = DecisionMemo()  # the IVR paths of the decisions this node answers, for the cards
    routing.service.on_decision.append(decision_memo.note)
    screenpop = build_screenpop(config, sessions=sessions, run_blocking=blocking.run, users=SQLUserStore(sessions),
                                redis=redis_client, hub=telephony.hub if telephony is not None else None,
                                leads=telephony.leading.__contains__ if telephony is not None else None,
                                identification=lookups, decision_memo=decision_memo)
    if screenpop.pop is not None:
        invalidator.listeners.append(screenpop.pop.cards.listener)
    from screenpop.wallboard_socket import WallboardSockets

    WallboardSockets(wallboard).register(screenpop.ws)  # /ws/wallboard: the wallboard's snapshots, pushed

    signer = TokenSigner(config.secret_key(), config.auth.token_lifetime_hours * 3600)
    auth = config.auth
    users = SQLUserStore(sessions)
    # With Redis, login budgets and ended sessions are shared by every node; otherwise kept in this process.
    if redis_client is not None:
        limiter: Any = RedisLoginLimiter(redis_client, auth.login_attempts, auth.address_login_attempts,
                                         auth.login_window_seconds)
        revocations: Any = RedisRevocations(redis_client)
    else:
        limiter = MemoryLoginLimiter(auth.login_attempts, auth.address_login_attempts, auth.login_window_seconds)
        revocations = None
    passwords = PasswordWork.on_own_threads()  # scrypt never queues SQL or /healthz behind it
    # Admin edits (stores, DIDs, hours …) reload the routing data here and, over Redis, on every other node.
    from ccserver.admin.reload import ConfigReloads

    admin_reload = ConfigReloads(redis_client)
    admin_reload.on_reload(routing.refresher.reload_now)

    # What a reload re-reads: rules → routing, agents (personal queue), directory; IVR menus; desktop codes.
    from ccserver.admin.live import LiveSettings

    live = LiveSettings(sessions, config, blocking.run, routing=routing.service, agents=agents, directory=directory,
                        ivr=ivr, desktop=desktop)
    live.attach(admin_reload)

    async def start_admin_reload() -> None:
        try:
            await live.reload_all()
        except Exception as exc:  # noqa: BLE001 - SQL down at start: the file's settings until the next reload
            log.warning("the admin's routing rules, IVR or desktop codes could not be read (%s); using the file's",
                        type(exc).__name__)
        await admin_reload.start()
    ctx = WebContext(
        config=config,
        signer=signer,
        limiter=limiter,
        users=users,
        templates=Pages(),
        run_blocking=blocking.run,
        clock=reactor,
        passwords=passwords,
        health_probes=probes,
        customers=directory,
        identification=lookups,
        agents=agents,
        tracker=telephony.tracker if telephony is not None else None,
        asterisk=functools.partial(asterisk_status, telephony),
        session_factory=sessions,
        kpi=kpi,
        supervisor=supervisor,
        recordings=RecordingFiles(recording_policy.dir),
        wallboard=wallboard,
        campaigns=campaigns,
        preview=preview,
        sessions=default_sessions(config, users, blocking.run, reactor, revocations),
        tickets=tickets,
        desktop=desktop,
        admin_reload=admin_reload,
        screenpop=screenpop,
    )
    ctx.sessions.on_session_ended.append(lambda principal, _reason: screenpop.ws.end_session(principal.session_id))

    if agents is not None:
        from ccserver.web.agent_routes import end_sign_ins_with_web_sessions

        end_sign_ins_with_web_sessions(ctx.sessions, agents)

    from twisted.internet.error import CannotListenError

    from ccserver.agi import FastAGIFactory, listen_fastagi
    from ccserver.components import Components, Step

    agi_factory = FastAGIFactory({**routing.handlers(), **ivr.handlers(), **(agi_handlers or {})},
                                 default_variables=config.agi.default_variables, clock=reactor,
                                 allow=config.agi.allow, command_timeout=config.agi.command_timeout)
    http, agi = config.http.listen, config.agi.listen
    site = build_site(ctx)
    ports: dict[str, Any] = {}

    def listen(name: str, start: Any) -> None:
        try:
            ports[name] = start()
        except CannotListenError as exc:
            raise ListenError(f"cannot listen on {exc.interface or '*'}:{exc.port} ({name}.listen): "
                              f"{exc.socketError}") from None

    async def stop_fastagi() -> None:
        # No new calls; the ones in flight finish (each submits its decision record) before the record writers
        # are flushed and closed — closing the writers first lost the calls answered then.
        stopped: Any = ports["agi"].stopListening()
        if stopped is not None:
            await wait(stopped)
        cut = await wait(agi_factory.drain(AGI_SHUTDOWN_GRACE))
        if cut:
            log.warning("%d FastAGI connections still open %.0f s after the stop were closed", cut,
                        AGI_SHUTDOWN_GRACE)
        agi_factory.stop_watching()

    def stop_jobs() -> None:
        if nightly is not None:
            nightly.stop()
        for task in watching:
            task.cancel()

    def start_jobs() -> None:
        if nightly is not None:
            nightly.start()
        if watcher is not None:
            watching.append(asyncio.ensure_future(watcher.run()))

    def stop_pools() -> None:
        passwords.stop()
        blocking.shutdown()
        engine.dispose()

    # Started in this order, stopped in reverse (ccserver/components.py says why the order matters).
    components = Components([
        Step("thread pools", None, stop_pools),
        Step("redis", None, redis_client.aclose if redis_client is not None else None),
        Step("call-path redis", call_path_redis.start if call_path_redis is not None else None,
             call_path_redis.stop if call_path_redis is not None else None),
        # Before telephony: its job runs before events flow, and at shutdown it stops after the hub delivered the
        # last events, writing the open interval's rows (and its live state) last.
        Step("kpi", kpi.start, kpi.stop),
        Step("telephony", telephony.start if telephony is not None else None,
             telephony.stop if telephony is not None else None),
        Step("routing", routing.start, routing.stop),
        Step("admin reload", start_admin_reload, admin_reload.stop),
        # The IVR has nothing to start; at start-up it names the prompts missing in prompts.sound_dir (zh/, en/).
        Step("ivr", lambda: check_prompts(config.prompts.sound_dir, routing_settings, ivr_settings) and None, None),
        # (LoopingCall.start's Deferred fires when the loop stops: not awaited.)
        Step("agent sweep", (lambda: sweeper.start(AGENT_SWEEP_SECONDS, False) and None) if sweeper else None,
             (lambda: sweeper.stop() if sweeper.running else None) if sweeper is not None else None),
        # The SLA alarm job, the webhook deliverer (and, with an Asterisk, call backs for abandoned callers).
        Step("tickets", start_tickets, stop_tickets),
        Step("recordings clean-up", recordings_cleanup.start, recordings_cleanup.stop),
        Step("wallboard", wallboard.start, wallboard.stop),
        Step("jobs", start_jobs, stop_jobs),
        # Before the listeners' turn at shutdown: the sockets close (1001) once HTTP and FastAGI have stopped.
        Step("screenpop", screenpop.start, screenpop.stop),
        Step("campaign refresh", due_refresh.start, due_refresh.stop),
        Step("dialer", dialer.start if dialer is not None else None, dialer.stop if dialer is not None else None),
        Step("fastagi", lambda: listen("agi", lambda: listen_fastagi(reactor, agi_factory, agi.port,
                                                                       interface=agi.host)), stop_fastagi),
        Step("http", lambda: listen("http", lambda: reactor.listenTCP(http.port, site, backlog=128,
                                                                        interface=http.host)),
             lambda: ports["http"].stopListening()),
    ])
    failed: list[BaseException] = []

    async def start() -> None:
        try:
            await components.start()
        except BaseException as exc:  # noqa: BLE001 - reported after the loop stops (exit code, message)
            failed.append(exc)
            reactor.stop()
            return
        freeze_startup_objects()
        http_url = f"http://{http.host}:{_port_of(ports['http'])}"
        screenpop.ws.http_origin = http_url  # the origin allowed to open websockets unless ws.allowed_origins
        banner = [
            f"ccserver {__version__} is up",
            f"  web:     {http_url}/   (login page: {http_url}/login)",
            f"  health:  {http_url}/healthz",
            f"  metrics: {http_url}/metrics",
            f"  ws:      {screenpop.ws.public_url}/ws/agent",
            f"  FastAGI: agi://{agi.host}:{_port_of(ports['agi'])}/incoming",
            f"  AMI:     {', '.join(f'{s.name}={s.host}:{s.port}' for s in config.ami_servers()) or 'not configured'}",
        ]
        print("\n".join(banner), flush=True)

    def shutdown(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        reactor.callFromThread(reactor.stop)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    # callLater, not callWhenRunning: startup triggers fire before the asyncio loop itself runs.
    reactor.callLater(0, lambda: asyncio.ensure_future(start()))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: as_deferred(components.stop()))
    log.info("ccserver starting (database %s, redis %s)", mask_url(config.database_url),
             mask_url(config.redis.url) or "none")
    reactor.run(installSignalHandlers=False)
    if failed:
        if isinstance(failed[0], ListenError | SchemaNotReady):
            raise failed[0]
        raise RuntimeError(f"ccserver could not start: {failed[0]!r}") from failed[0]
    log.info("ccserver stopped")
    return 0
