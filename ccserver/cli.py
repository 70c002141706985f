"""The `ccserver` command: run, db, demo-data, scores, asterisk, prompts, agents, users, stores, queues, config."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ccserver import __version__
from ccserver.config import Config, ConfigError, load_config
from ccserver.logs import setup_logging
from ccserver.redact import mask_url


class ProgressBar:
    """A one-line progress bar on stderr (redrawn at most 10 times a second)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self._last = 0.0
        self._started = time.monotonic()
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._finished or (done < total and now - self._last < 0.1):
            return
        self._finished = done >= total
        self._last = now
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {done}/{total} {now - self._started:6.1f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _config_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML config file (see config/ccserver.example.toml)")
    common.add_argument("--database-url", help="overrides CCSERVER_DATABASE_URL")
    common.add_argument("--redis-url", help="overrides CCSERVER_REDIS_URL")
    common.add_argument("--data-dir", help="overrides CCSERVER_SERVER_DATA_DIR")
    common.add_argument("--log-json", action="store_const", const=True, help="log one JSON object per line")
    return common


def _load(args: argparse.Namespace) -> Config:
    overrides: dict[tuple[str, str], Any] = {
        ("database", "url"): args.database_url,
        ("redis", "url"): args.redis_url,
        ("server", "data_dir"): args.data_dir,
        ("server", "log_json"): args.log_json,
    }
    for flag, key in (("http_listen", ("http", "listen")), ("agi_listen", ("agi", "listen")),
                      ("ws_listen", ("ws", "listen"))):
        overrides[key] = getattr(args, flag, None)
    config = load_config(args.config, overrides=overrides)
    setup_logging(config.server.log_level, config.server.log_json, config.server.log_pii)
    return config


def _schema_ready(config: Config) -> bool:
    """Whether the database is migrated; if not, say what to do (on stderr)."""
    from ccserver.server import SchemaNotReady, check_schema

    try:
        check_schema(config.database_url)
    except SchemaNotReady as exc:
        print(f"ccserver: {exc}", file=sys.stderr)
        return False
    return True


# Seconds between the two sweeps of the shared call cache after a bulk change (see Invalidator.everything).
CACHE_SETTLE_SECONDS = 10.0


def _drop_cached_customers(config: Config) -> None:
    """This process changed many customers at once: drop every customer cached in the servers' shared Redis
    cache, so the next call reads the new tier. (A server without Redis notices the new value_cutoffs row.)"""
    if not config.redis.url:
        return
    import asyncio

    import redis.asyncio as aioredis

    from ccserver.customers.cache import RedisSummaryCache
    from ccserver.customers.changes import Invalidator

    async def sweep() -> int:
        client = aioredis.Redis.from_url(config.redis.url, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            return await Invalidator(RedisSummaryCache(client), settle=CACHE_SETTLE_SECONDS).everything()
        finally:
            await client.aclose()

    try:
        dropped = asyncio.run(sweep())
    except Exception as exc:  # noqa: BLE001 - the data is written; only the cache could not be told
        print(f"ccserver: warning: could not drop the cached customers in Redis ({exc}); calls see the new "
              "tiers once their cache entries expire (10 minutes)", file=sys.stderr)
        return
    print(f"call cache: {dropped:,} cached customers dropped")


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    from ccserver.server import ListenError, SchemaNotReady, run_server

    try:
        return run_server(config)
    except (SchemaNotReady, ListenError) as exc:
        print(f"ccserver: {exc}", file=sys.stderr)
        return 2


def cmd_db(args: argparse.Namespace) -> int:
    config = _load(args)
    from sqlalchemy.exc import OperationalError

    try:
        return _db(args, config)
    except OperationalError as exc:  # the server refused or is not there: one line, not alembic's chained traces
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "unreachable"
        print(f"ccserver: cannot reach the database ({mask_url(config.database_url)}): {reason}", file=sys.stderr)
        return 2


def _db(args: argparse.Namespace, config: Config) -> int:
    from ccserver.db import migrate

    url = config.database_url
    if args.db_command == "upgrade":
        config.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(url, args.revision)
        print(f"database at revision {migrate.current_revision(url)}")
    elif args.db_command == "downgrade":
        migrate.downgrade(url, args.revision)
        print(f"database at revision {migrate.current_revision(url) or 'base (empty)'}")
    else:
        print(f"current: {migrate.current_revision(url) or 'none'}; head: {migrate.head_revision()}; "
              f"status: {migrate.schema_status(url)}")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    config = _load(args)
    from ccserver import demo

    if not _schema_ready(config):
        return 2
    logins_file = config.data_dir / "demo-logins.txt"
    if args.if_empty and demo.has_demo_data(config.database_url):
        print("demo data already loaded")
        if logins_file.exists():
            print(logins_file.read_text(encoding="utf-8").rstrip())
        return 0
    from routing.value import TierShares, ValueWeights

    try:
        summary = demo.generate(
            config.database_url,
            customers=args.customers,
            seed=args.seed,
            as_of=args.as_of,
            agent_interface=args.agent_interface,
            admin_password=args.admin_password,
            replace=args.replace,
            kpi_days=args.kpi_days,
            kpi_thresholds=(float(config.get("kpi", "service_level_seconds")),
                            float(config.get("kpi", "short_abandon_seconds"))),
            progress=ProgressBar("demo data"),
            weights=ValueWeights(**config.get("scores", "weights")),
            shares=TierShares(**config.get("scores", "tier_shares")),
        )
    except demo.DemoDataExists as exc:
        print(f"ccserver: {exc}", file=sys.stderr)
        return 2
    text = demo.describe(summary)
    print(text)
    _drop_cached_customers(config)  # new customers, new tiers: nothing cached before may be served
    # Kept (owner-only) so later `make run`s can show the demo logins again.
    config.data_dir.mkdir(parents=True, exist_ok=True)
    logins_file.write_text(text + "\n", encoding="utf-8")
    logins_file.chmod(0o600)
    return 0


def cmd_scores(args: argparse.Namespace) -> int:
    config = _load(args)
    from ccserver.customers.scores import recompute_all
    from ccserver.db.engine import make_engine, session_factory
    from routing.value import TierShares, ValueWeights

    if not _schema_ready(config):
        return 2
    engine = make_engine(config.database_url)
    try:
        summary = recompute_all(
            session_factory(engine),
            as_of=args.as_of,
            weights=ValueWeights(**config.get("scores", "weights")),
            shares=TierShares(**config.get("scores", "tier_shares")),
            tz=config.server.time_zone,
            progress=ProgressBar("scores"),
        )
    finally:
        engine.dispose()
    tiers = ", ".join(f"{tier} {count:,}" for tier, count in summary.get("tiers", {}).items())
    print(f"rescored {summary.get('customers', 0):,} customers in {summary.get('seconds', 0):.1f} s; {tiers}")
    _drop_cached_customers(config)
    return 0


def cmd_asterisk(args: argparse.Namespace) -> int:
    if args.asterisk_command == "lint":
        from ccserver.asterisk.lint import lint_main

        return lint_main(args.files, args.ami_user)
    config = _load(args)
    if args.asterisk_command == "queues":
        from ccserver.asterisk.queues_writer import queues_main

        if not _schema_ready(config):
            return 2
        return queues_main(config)
    from ccserver.asterisk.queues_import import import_queues_main

    return import_queues_main(args.file, config.database_url)


def cmd_prompts(args: argparse.Namespace) -> int:
    """``ccserver prompts build``: render the missing prompts (ivr/render.py) into prompts.sound_dir/{zh,en}/."""
    config = _load(args)
    from ivr.catalogue import catalogue
    from ivr.render import RenderError, build_prompts
    from ivr.settings import IVRSettings

    sound_dir = args.sound_dir or config.prompts.sound_dir
    if not sound_dir:
        print("ccserver: no sound folder: set prompts.sound_dir (e.g. /var/lib/asterisk/sounds) or give --sound-dir",
              file=sys.stderr)
        return 2
    models: list[str] = []
    if not args.no_models:
        models = _vehicle_models(config)
    prompts = catalogue(IVRSettings.from_dict(config.section("ivr")).prompts, models)
    try:
        report = build_prompts(sound_dir, prompts, only=args.only or (), progress=ProgressBar("prompts"))
    except RenderError as exc:
        print(f"ccserver: {exc}", file=sys.stderr)
        return 2
    print(f"prompts in {sound_dir}: {len(report.rendered)} rendered, {report.kept} already there"
          + (f", {len(report.failed)} FAILED ({', '.join(n for n, _ in report.failed[:5])})" if report.failed else ""))
    return 1 if report.failed else 0


def _vehicle_models(config: Config) -> list[str]:
    """The vehicle models in the database (each gets a prompt the IVR reads a car back with); none when the
    database is not there yet."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from ccserver.db.engine import make_engine, session_factory
    from ccserver.db.models import Vehicle
    from ccserver.server import SchemaNotReady, check_schema

    try:
        check_schema(config.database_url)
    except SchemaNotReady as exc:
        print(f"ccserver: note: no vehicle model prompts ({exc})", file=sys.stderr)
        return []
    engine = make_engine(config.database_url)
    try:
        with session_factory(engine)() as session:
            return sorted(set(session.scalars(select(Vehicle.model).distinct())))
    except SQLAlchemyError as exc:
        print(f"ccserver: note: no vehicle model prompts ({exc.__class__.__name__})", file=sys.stderr)
        return []
    finally:
        engine.dispose()


def cmd_agents(args: argparse.Namespace) -> int:
    config = _load(args)
    if not _schema_ready(config):
        return 2
    from ccserver.agents.command import run

    return run(args, config)


def cmd_users(args: argparse.Namespace) -> int:
    config = _load(args)
    if not _schema_ready(config):
        return 2
    from ccserver.admin.users_command import run

    return run(args, config)


def cmd_org(args: argparse.Namespace) -> int:
    """``stores delete`` and ``queues delete`` (ccserver/admin/org_command.py)."""
    config = _load(args)
    if not _schema_ready(config):
        return 2
    from ccserver.admin.org_command import run

    return run(args, config)


def cmd_crm(args: argparse.Namespace) -> int:
    """``import``, ``export`` and ``customers erase`` (ccserver/admin/crm_command.py)."""
    from ccserver.admin import crm_command

    config = _load(args)
    if args.command == "import" and args.template:
        return crm_command.run_import(args, config)
    if not _schema_ready(config):
        return 2
    run = {"import": crm_command.run_import, "export": crm_command.run_export,
           "customers": crm_command.run_erase}[args.command]
    return run(args, config)


def cmd_check(args: argparse.Namespace) -> int:
    """``ccserver check``: database, Redis, AMI user and privileges, FastAGI port, prompts (ccserver/admin/check.py)."""
    from ccserver.admin.check import main as check_main

    return check_main(_load(args), sys.stdout)


def cmd_config(args: argparse.Namespace) -> int:
    config = _load(args)
    shown = {section: {key: {"value": value, "from": config.sources[(section, key)]} for key, value in keys.items()}
             for section, keys in config.redacted().items()}
    if not config.get("server", "secret_key"):  # none configured: the one generated into the data folder is used
        path = config.secret_key_file
        shown["server"]["secret_key"] = (
            {"value": "********", "from": f"generated file {path}"} if path.exists()
            else {"value": "", "from": f"not set: generated into {path} at the first start"})
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _days(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= 366:
        raise argparse.ArgumentTypeError("must be between 0 and 366")
    return value


def _positive(text: str) -> int:
    value = _whole(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _config_flags()
    parser = argparse.ArgumentParser(prog="ccserver", description="Contact-center integration server for Asterisk")
    parser.add_argument("--version", action="version", version=f"ccserver {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run the server")
    run.add_argument("--http-listen", help="host:port, overrides CCSERVER_HTTP_LISTEN")
    run.add_argument("--agi-listen", help="host:port, overrides CCSERVER_AGI_LISTEN")
    run.add_argument("--ws-listen", help="host:port, overrides CCSERVER_WS_LISTEN")
    run.set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="database schema migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", parents=[common], help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", parents=[common], help="revert migrations")
    down.add_argument("revision", help="target revision, or 'base' for none")
    db_sub.add_parser("current", parents=[common], help="show the schema revision")
    db.set_defaults(func=cmd_db)

    demo = sub.add_parser("demo-data", parents=[common], help="load a realistic demo dealer group")
    demo.add_argument("--customers", type=_positive, default=10_000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--as-of", type=_date, default=None, help="date all demo dates are relative to (default today)")
    demo.add_argument("--agent-interface", default="PJSIP/{ext}",
                      help="Asterisk interface template for agents, e.g. Local/{ext}@agent-phones/n")
    demo.add_argument("--admin-password", default="admin")
    demo.add_argument("--replace", action="store_true", help="delete existing demo data first")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when demo data is already loaded")
    demo.add_argument("--kpi-days", type=_days, default=0, metavar="N",
                      help="also N days of queue and agent KPI history before --as-of, for the reports (default 0)")
    demo.set_defaults(func=cmd_demo_data)

    scores = sub.add_parser("scores", help="customer value scores and tiers")
    scores_sub = scores.add_subparsers(dest="scores_command", required=True)
    recompute = scores_sub.add_parser("recompute", parents=[common],
                                      help="rescore every customer and recompute the tier cut-offs now")
    recompute.add_argument("--as-of", type=_date, default=None, help="the day scores are computed for (default today)")
    scores.set_defaults(func=cmd_scores)

    asterisk = sub.add_parser("asterisk", help="check, import and write Asterisk configuration files")
    asterisk_sub = asterisk.add_subparsers(dest="asterisk_command", required=True)
    lint = asterisk_sub.add_parser("lint", help="check dialplan, queues and manager files against the contract")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.add_argument("--ami-user", default="ccserver", help="the manager.conf user ccserver logs in as")
    importer = asterisk_sub.add_parser("import-queues", parents=[common], help="import queues from queues.conf")
    importer.add_argument("file", metavar="FILE")
    asterisk_sub.add_parser("queues", parents=[common], help="write queues_ccserver.conf from the database to stdout")
    asterisk.set_defaults(func=cmd_asterisk)

    prompts = sub.add_parser("prompts", help="the sound files of the prompts ccserver plays")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True)
    build = prompts_sub.add_parser("build", parents=[common],
                                   help="render every missing prompt (zh and en) with espeak-ng and sox")
    build.add_argument("--sound-dir", help="Asterisk's sound folder (default: prompts.sound_dir)")
    build.add_argument("--only", action="append", metavar="NAME", help="render only this prompt (repeatable)")
    build.add_argument("--no-models", action="store_true", help="no vehicle model prompts (skip the database)")
    prompts.set_defaults(func=cmd_prompts)

    from ccserver.agents.command import add_parser as add_agents_parser

    add_agents_parser(sub, common)
    sub.choices["agents"].set_defaults(func=cmd_agents)

    from ccserver.admin.users_command import add_parser as add_users_parser

    add_users_parser(sub, common)
    sub.choices["users"].set_defaults(func=cmd_users)

    from ccserver.admin.org_command import add_parsers as add_org_parsers

    add_org_parsers(sub, common)
    for name in ("stores", "queues"):
        sub.choices[name].set_defaults(func=cmd_org)

    from ccserver.admin.crm_command import add_parsers as add_crm_parsers

    add_crm_parsers(sub, common)
    for name in ("import", "export", "customers"):
        sub.choices[name].set_defaults(func=cmd_crm)
    sub.add_parser("check", parents=[common], help="check a deployment: database, Redis, AMI user and privileges, "
                   "FastAGI port, prompts").set_defaults(func=cmd_check)
    from ccserver.dialer.command import add_parser as add_dialer_parser

    add_dialer_parser(sub)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    cfg_sub.add_parser("show", parents=[common], help="print the effective settings (secrets masked)")
    cfg.set_defaults(func=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "as_of", "unset") is None:
        args.as_of = dt.date.today()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"ccserver: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
