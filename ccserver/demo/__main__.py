"""``python -m ccserver.demo [--customers N] [--seed S] [--as-of YYYY-MM-DD] [--url URL] [--replace]``."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from ccserver.config import load_config
from ccserver.demo import DemoDataExists, generate


def _bar(done: int, total: int) -> None:
    filled = 40 * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {done:,}/{total:,} customers")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccserver.demo", description="Load the demo dealer group.")
    parser.add_argument("--url", help="database URL (default: the configured database.url)")
    parser.add_argument("--config", help="ccserver TOML config file")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="the data's today (default: today)")
    parser.add_argument("--agent-interface", default="PJSIP/{ext}", help="e.g. 'Local/{ext}@agent-phones/n'")
    parser.add_argument("--admin-password", default="admin")
    parser.add_argument("--replace", action="store_true", help="wipe every ccserver table first")
    args = parser.parse_args(argv)
    url = args.url or load_config(args.config).database_url
    try:
        summary = generate(url, customers=args.customers, seed=args.seed, as_of=args.as_of,
                           agent_interface=args.agent_interface, admin_password=args.admin_password,
                           progress=_bar, replace=args.replace)  # fmt: skip
    except DemoDataExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logins = summary["logins"]
    print(f"loaded {summary['total_rows']:,} rows ({summary['customers']:,} customers) "
          f"in {summary['elapsed_seconds']} s")  # fmt: skip
    print(f"  admin login:      admin / {logins['admin']['password']}")
    print(f"  agents:           {logins['agents']}")
    print(f"  supervisors:      {', '.join(logins['supervisors'])}")
    print(f"  department:       {', '.join(logins['department'])}")
    print(f"  campaign manager: {', '.join(logins['campaign_manager'])}")
    print(f"  demo password:    {logins['demo_password']}  (every login except admin)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
