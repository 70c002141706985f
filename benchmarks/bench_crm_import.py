"""CRM import speed on SQLite: a GB18030 customers CSV with Chinese headers, checked, written, then rescored.

    python -m benchmarks.bench_crm_import --rows 100000

Target (issue #13): 100,000 rows in under a minute on SQLite. The figure is the whole `ccserver import` path:
decode + read, check every row (numbers through phonenumbers), one-transaction write, score/tier recompute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from ccserver.admin import crm_import as ci
from ccserver.customers.scores import recompute_all
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import DealerGroup, Store

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


def make_csv(rows: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    lines = ["客户姓名,手机号码,所属门店,客户类型,同意联系,会员等级"]
    numbers = rnd.sample(range(10_000_000, 99_999_999), rows)
    for i in range(rows):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN)
        store = "北京沃尔沃亚运村4S店" if i % 2 else "sh-bmw"
        lines.append(f"{name},138{numbers[i]:08d},{store},个人,{'是' if i % 3 else '否'},{i % 5}")
    return ("\r\n".join(lines) + "\r\n").encode("gb18030")


def run(rows: int = 100_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        with session_factory(engine).begin() as s:
            group = DealerGroup(name="Bench")
            s.add(group)
            s.flush()
            s.add_all([Store(group_id=group.id, code="bj-volvo", name="北京沃尔沃亚运村4S店", brand="Volvo",
                             city="Beijing"),
                       Store(group_id=group.id, code="sh-bmw", name="上海宝马浦东4S店", brand="BMW", city="Shanghai")])
        data = make_csv(rows)
        t0 = time.perf_counter()
        table = ci.read_table("customers", data)
        t1 = time.perf_counter()
        plan = ci.plan(engine, "customers", table)
        t2 = time.perf_counter()
        counts = ci.write(engine, plan)
        t3 = time.perf_counter()
        recompute_all(session_factory(engine), as_of=dt.date(2026, 11, 23))
        t4 = time.perf_counter()
        rerun = ci.plan(engine, "customers", ci.read_table("customers", data))
        t5 = time.perf_counter()
        engine.dispose()
    return {"benchmark": "crm_import", "backend": "sqlite", "rows": rows, "bytes": len(data),
            "encoding": table.encoding, "imported": counts["customers"], "errors": len(plan.errors),
            "read_s": round(t1 - t0, 2), "check_s": round(t2 - t1, 2), "write_s": round(t3 - t2, 2),
            "recompute_s": round(t4 - t3, 2), "total_s": round(t4 - t0, 2),
            "rows_per_s": round(rows / (t4 - t0)), "rerun_check_s": round(t5 - t4, 2),
            "rerun_new": rerun.count("new")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    print(json.dumps(run(parser.parse_args().rows), indent=2))


if __name__ == "__main__":
    main()
