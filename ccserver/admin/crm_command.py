"""``ccserver import …``, ``ccserver export …`` and ``ccserver customers erase``: the CRM from a shell."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from ccserver.config import Config


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    from ccserver.admin.crm_import import KINDS

    imp = sub.add_parser("import", parents=[common],
                         help="import customers, vehicles, orders or visits from CSV (UTF-8 or GBK/GB18030)")
    imp.add_argument("kind", choices=KINDS)
    imp.add_argument("file", metavar="FILE.csv", nargs="?")
    imp.add_argument("--dry-run", action="store_true", help="check every row and report; change nothing")
    imp.add_argument("--mapping", metavar="FILE", help='JSON {"source column": "field"} for other headers')
    imp.add_argument("--template", action="store_true",
                     help="print the header that needs no mapping and an example row (columns on stderr)")
    imp.add_argument("--all-rows", action="store_true", help="report every row, not only errors and merges")
    imp.add_argument("--no-recompute", action="store_true", help="leave scores and tiers for the nightly run")

    exp = sub.add_parser("export", parents=[common], help="export customers or tickets as CSV (stdout)")
    exp.add_argument("kind", choices=("customers", "tickets"))
    exp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    customers = sub.add_parser("customers", help="customer data requests")
    customers_sub = customers.add_subparsers(dest="customers_command", required=True)
    erase = customers_sub.add_parser("erase", parents=[common],
                                     help="erase a customer's personal data on request (statistics are kept)")
    erase.add_argument("customer_id", metavar="ID", type=int)


def _actor() -> Any:
    from ccserver.admin.users import shell_actor

    return shell_actor()


def run_import(args: argparse.Namespace, config: Config) -> int:
    from ccserver.admin import crm_import as ci
    from ccserver.cli import ProgressBar
    from ccserver.db.engine import make_engine

    if args.template:
        header, doc = ci.template(args.kind)
        sys.stdout.write(header)
        print(f"columns of {args.kind} (Chinese headers such as 姓名, 手机, 门店, 车架号 are understood too):\n{doc}",
              file=sys.stderr)
        return 0
    if not args.file:
        print("ccserver import: give FILE.csv (or --template)", file=sys.stderr)
        return 2
    try:
        with open(args.file, "rb") as f:
            data = f.read()
        table = ci.read_table(args.kind, data, ci.load_mapping(args.mapping))
    except OSError as exc:
        print(f"ccserver import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except ci.ImportError_ as exc:
        print(f"ccserver import: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(config.database_url)
    try:
        plan = ci.plan(engine, args.kind, table, region=config.phone.default_region,
                       progress=ProgressBar("checking", sys.stderr))
        for line in ci.report(plan, all_rows=args.all_rows):
            print(line)
        if args.dry_run:
            print("dry run: nothing was written")
            return 1 if plan.errors else 0
        counts = ci.write(engine, plan, progress=ProgressBar("importing", sys.stderr))
        print("imported: " + ", ".join(f"{n:,} {what}" for what, n in counts.items()))
        _audit(engine, "crm.imported", f"import:{args.kind}",
               {"file": str(args.file)[-200:], "encoding": table.encoding, "rows": len(table.rows),
                "errors": len(plan.errors), **counts})
        if any(counts.values()) and not args.no_recompute:
            _recompute(engine, config)
    finally:
        engine.dispose()
    from ccserver.cli import _drop_cached_customers

    _drop_cached_customers(config)
    return 1 if plan.errors else 0


def _recompute(engine: Any, config: Config) -> None:
    from ccserver.cli import ProgressBar
    from ccserver.customers.scores import recompute_all
    from ccserver.db.engine import session_factory
    from routing.value import TierShares, ValueWeights

    summary = recompute_all(session_factory(engine), as_of=dt.date.today(),
                            weights=ValueWeights(**config.get("scores", "weights")),
                            shares=TierShares(**config.get("scores", "tier_shares")),
                            tz=config.server.time_zone, progress=ProgressBar("scores", sys.stderr))
    tiers = ", ".join(f"{tier} {count:,}" for tier, count in summary.get("tiers", {}).items())
    print(f"rescored {summary.get('customers', 0):,} customers; {tiers}")


def _audit(engine: Any, action: str, target: str, detail: dict[str, Any]) -> None:
    from ccserver.admin.users import audit
    from ccserver.db.engine import session_factory

    with session_factory(engine)() as session, session.begin():
        audit(session, _actor(), action, target, None, detail)


def run_export(args: argparse.Namespace, config: Config) -> int:
    from ccserver.admin.crm_export import export_csv
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(config.database_url)
    try:
        out = open(args.output, "w", encoding="utf-8-sig", newline="") if args.output else sys.stdout  # noqa: SIM115
        try:
            rows = 0
            for chunk in export_csv(session_factory(engine), args.kind):
                out.write(chunk)
                rows += chunk.count("\n")
        finally:
            if args.output:
                out.close()
        _audit(engine, "crm.exported", f"export:{args.kind}", {"rows": max(rows - 1, 0), "via": "cli"})
    finally:
        engine.dispose()
    return 0


def run_erase(args: argparse.Namespace, config: Config) -> int:
    import json

    from ccserver.admin.crm_export import erase_customer
    from ccserver.admin.users import AdminError
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(config.database_url)
    try:
        result = erase_customer(session_factory(engine), _actor(), args.customer_id)
    except AdminError as exc:
        print(f"ccserver customers: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    from ccserver.cli import _drop_cached_customers

    _drop_cached_customers(config)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
