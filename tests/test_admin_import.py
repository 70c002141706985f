"""CRM import from messy CSVs (UTF-8, UTF-8 with BOM, GB18030), export and erasure."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents_ui.i18n import translations
from ccserver.admin import crm_import as ci
from ccserver.admin.crm_export import erase_customer, export_csv
from ccserver.admin.users import Actor
from ccserver.cli import main
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import (
    AuditLog,
    Customer,
    DealerGroup,
    Order,
    PhoneNumber,
    ServiceVisit,
    Store,
    Ticket,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.texts import translated

CRM = Path(__file__).parent / "data" / "crm"
COUNTED = (Customer, PhoneNumber, Vehicle, Order, ServiceVisit)


def _seed(url: str) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        group = DealerGroup(name="Demo Group")
        s.add(group)
        s.flush()
        s.add_all([Store(group_id=group.id, code="bj-volvo", name="北京沃尔沃亚运村4S店", brand="Volvo",
                         city="Beijing"),
                   Store(group_id=group.id, code="sh-bmw", name="上海宝马浦东4S店", brand="BMW", city="Shanghai"),
                   User(username="zhang.wei", display_name="张伟", role="agent"),
                   User(username="bj-volvo-sales01", display_name="Li Na 李娜", role="department")])
    engine.dispose()


@pytest.fixture
def crm(db_url):
    _seed(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        counts = {t.__tablename__: conn.scalar(select(func.count()).select_from(t)) for t in COUNTED}
        counts["links"] = conn.scalar(select(func.count()).select_from(customer_phones))
        return counts


def _run(engine, kind: str, name: str, mapping: dict[str, str] | None = None) -> ci.Plan:
    table = ci.read_table(kind, (CRM / name).read_bytes(), mapping)
    plan = ci.plan(engine, kind, table)
    ci.write(engine, plan)
    return plan


def _by_line(plan: ci.Plan) -> dict[int, tuple[str, str]]:
    return {r.line: (r.status, r.message) for r in plan.results}


def test_gb18030_customers_dry_run_reports_every_bad_row(crm):
    table = ci.read_table("customers", (CRM / "customers_gbk.csv").read_bytes())
    assert table.encoding == "gb18030" and table.ignored == ["备注"]
    before = _counts(crm)
    plan = ci.plan(crm, "customers", table)
    rows = _by_line(plan)
    assert _counts(crm) == before  # a dry run writes nothing
    assert rows[2][0] == "new" and "+8613800138000" in rows[2][1]
    assert rows[3][0] == "new"
    assert rows[4] == ("error", "bad phone '12345': short code or extension")
    assert rows[5] == ("error", "unknown store '深圳奔驰4S店'")
    assert rows[6][0] == "merged" and "line 2" in rows[6][1]  # the same number again: never a second customer
    assert rows[7][0] == "new" and "+861065528889" in rows[7][1]
    assert rows[8][0] == "new" and "+8613700137000" in rows[8][1]  # full-width digits, upper-case store code
    assert rows[9] == ("error", "name is empty")
    assert rows[10][0] == "error" and "kind '外星人'" in rows[10][1]
    assert rows[11] == ("error", "unknown sales consultant 'nobody'")
    report = "\n".join(ci.report(plan))
    for line in (4, 5, 6, 9, 10, 11):
        assert f"line {line}:" in report
    assert "4 new, 1 merged, 0 unchanged, 5 with errors" in report


def test_row_reports_read_in_chinese_reasons_and_phone_library_texts_included(crm):
    """A page in zh-CN reads every row's reason in Chinese: the RowError's text kept (not str()), the number's
    reason from routing.numbers and the merged / unchanged lines too."""
    zh = translations("zh-CN").gettext
    rows = {r.line: translated(r.message, zh) for r in
            ci.plan(crm, "customers", ci.read_table("customers", (CRM / "customers_gbk.csv").read_bytes())).results}
    assert rows[4] == "phone '12345' 无效：短号或分机号"
    assert rows[6] == "号码 +8613800138000 已属于第 2 行：已合并"
    assert rows[9] == "名称为空"
    csv = "name,phone\n李四,not-a-number\n"
    _run(crm, "customers", "customers_gbk.csv")
    again = {r.line: translated(r.message, zh) for r in ci.plan(
        crm, "customers", ci.read_table("customers", (CRM / "customers_gbk.csv").read_bytes())).results}
    assert "没有新内容" in again[2] and "客户 #" in again[2] and "nothing new" not in again[2]
    bad = ci.plan(crm, "customers", ci.read_table("customers", csv.encode())).results
    assert "不是号码" in translated(bad[0].message, zh)


def test_import_writes_once_and_a_rerun_adds_nothing(crm):
    plan = _run(crm, "customers", "customers_gbk.csv")
    assert plan.count("new") == 4
    counts = _counts(crm)
    assert counts["customers"] == 4 and counts["phone_numbers"] == 5 and counts["links"] == 5
    with session_factory(crm)() as s:
        wang = s.scalars(select(Customer).where(Customer.name == "王小明")).one()
        assert wang.membership_level == 2 and wang.consent and wang.sales_consultant_id is not None
        assert s.scalars(select(Store.code).where(Store.id == wang.home_store_id)).one() == "bj-volvo"
        company = s.scalars(select(Customer).where(Customer.kind == "company")).one()
        assert company.name == "北京顺达物流有限公司"
    again = _run(crm, "customers", "customers_gbk.csv")
    assert again.count("new") == 0 and again.count("merged") == 0 and again.count("unchanged") == 5
    assert _counts(crm) == counts


def test_vehicles_orders_and_visits(crm):
    _run(crm, "customers", "customers_gbk.csv")
    customers_before = _counts(crm)["customers"]
    table = ci.read_table("vehicles", (CRM / "vehicles_utf8bom.csv").read_bytes())
    assert table.encoding == "utf-8-sig"
    plan = ci.plan(crm, "vehicles", table)
    rows = _by_line(plan)
    assert rows[2][0] == "new" and "owner by number" in rows[2][1]
    assert rows[3][0] == "new" and "new owner" in rows[3][1]
    assert rows[4] == ("error", "duplicate VIN LVYZBAKD1KP000001 (also on line 2)")
    assert rows[5][0] == "error" and "bad VIN" in rows[5][1]
    assert rows[6][0] == "error" and "bad customer_phone '12'" in rows[6][1]
    assert rows[7][0] == "error" and "customer_name is empty" in rows[7][1]
    assert rows[8][0] == "error" and "purchase_date '2023-13-01'" in rows[8][1]
    assert rows[9][0] == "new" and "owner by number" in rows[9][1]  # 李华's number written differently
    ci.write(crm, plan)
    assert _counts(crm)["vehicles"] == 3 and _counts(crm)["customers"] == customers_before + 1
    with session_factory(crm)() as s:
        xc60 = s.scalars(select(Vehicle).where(Vehicle.vin == "LVYZBAKD1KP000001")).one()
        assert xc60.mileage_km == 15000 and xc60.plate == "京A12345" and str(xc60.purchase_date) == "2023-05-20"

    orders = _run(crm, "orders", "orders_utf8.csv")
    rows = _by_line(orders)
    assert [rows[n][0] for n in range(2, 9)] == ["new", "new", "unchanged", "error", "error", "new", "error"]
    assert "no customer with number +8613300000000" in rows[5][1]
    assert "amount 'abc'" in rows[6][1] and "order kind 'flowers'" in rows[8][1]
    visits = _run(crm, "visits", "visits_utf8.csv")
    rows = _by_line(visits)
    assert [rows[n][0] for n in range(2, 6)] == ["new", "new", "unchanged", "error"]
    assert "no vehicle with VIN LVYZBAKD1KP000009" in rows[5][1]
    with session_factory(crm)() as s:
        visit = s.scalars(select(ServiceVisit).order_by(ServiceVisit.id)).first()
        assert visit is not None and visit.status == "collected"
        assert visit.opened_at.isoformat().startswith("2025-10-08T01:30")  # 09:30 in Beijing
    counts = _counts(crm)
    assert counts["orders"] == 3 and counts["service_visits"] == 2
    for kind, name in (("vehicles", "vehicles_utf8bom.csv"), ("orders", "orders_utf8.csv"),
                       ("visits", "visits_utf8.csv")):
        assert _run(crm, kind, name).count("new") == 0
    assert _counts(crm) == counts


def test_a_failure_part_way_leaves_nothing(crm, monkeypatch):
    table = ci.read_table("customers", (CRM / "customers_gbk.csv").read_bytes())
    plan = ci.plan(crm, "customers", table)
    before = _counts(crm)

    def broken(rows):  # customers and numbers are in; the links then fail
        yield rows[:1]
        raise RuntimeError("disk full")

    monkeypatch.setattr(ci, "_chunks", broken)
    with pytest.raises(RuntimeError):
        ci.write(crm, plan)
    assert _counts(crm) == before


def test_mapping_and_missing_columns(crm):
    data = (CRM / "customers_other_headers.csv").read_bytes()
    with pytest.raises(ci.ImportError_, match="required column.*name, phone.*give --mapping"):  # the CLI's
        ci.read_table("customers", data)
    mapping = ci.load_mapping(CRM / "mapping_example.json")
    table = ci.read_table("customers", data, mapping)
    assert ci.plan(crm, "customers", table).count("new") == 1
    with pytest.raises(ci.ImportError_, match="unknown customers fields: colour"):
        ci.read_table("customers", data, {"Kunde": "colour"})
    with pytest.raises(ci.ImportError_, match="neither UTF-8 nor GB18030"):
        ci.read_table("customers", b"name,phone\n\x81\x30\xff\xff\n")


def test_cli_import_dry_run_then_real_run_and_template(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path)]
    url = f"sqlite:///{tmp_path / 'ccserver.sqlite3'}"
    _seed(url)
    assert main(["import", "customers", "--template", *data]) == 0
    out, err = capsys.readouterr()
    header, example = list(csv.reader(io.StringIO(out)))
    assert header[:2] == ["name", "phone"] and example[0] == "王小明" and "required" in err
    template = tmp_path / "t.csv"
    template.write_text(out, encoding="utf-8")
    assert main(["import", "customers", str(CRM / "customers_gbk.csv"), "--dry-run", *data]) == 1
    out, _ = capsys.readouterr()
    assert "line 5: ERROR: unknown store '深圳奔驰4S店'" in out and "dry run: nothing was written" in out
    engine = make_engine(url)
    assert _counts(engine)["customers"] == 0
    assert main(["import", "customers", str(CRM / "customers_gbk.csv"), *data]) == 1  # 1: some rows had errors
    out, err = capsys.readouterr()
    assert "imported: 4 customers" in out and "rescored 4 customers" in out and "importing" in err
    assert main(["import", "customers", str(template), *data]) == 0  # the template's example row imports
    capsys.readouterr()
    with session_factory(engine)() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "crm.imported")).first()
        assert row is not None and row.detail["after"]["customers"] == 4
        assert s.scalar(select(func.count()).select_from(Customer).where(Customer.tier.is_(None))) == 0
    engine.dispose()
    assert main(["import", "customers", str(tmp_path / "missing.csv"), *data]) == 2


def test_export_and_erase(crm):
    _run(crm, "customers", "customers_gbk.csv")
    _run(crm, "vehicles", "vehicles_utf8bom.csv")
    _run(crm, "orders", "orders_utf8.csv")
    sessions = session_factory(crm)
    text = "".join(export_csv(sessions, "customers"))
    rows = list(csv.DictReader(io.StringIO(text)))
    wang = next(r for r in rows if r["name"] == "王小明")
    assert wang["phone"] == "+8613800138000" and wang["phone2"] == "+861065528888" and wang["store"] == "bj-volvo"
    with sessions() as s:
        s.add(Ticket(kind="complaint", subject="王小明 complains", body="call 13800138000",
                     customer_id=int(wang["id"]), contact_e164="+8613800138000"))
        s.commit()
    tickets = list(csv.DictReader(io.StringIO("".join(export_csv(sessions, "tickets")))))
    assert tickets[0]["subject"] == "王小明 complains"
    with sessions() as s:
        orders_before = s.scalar(select(func.count()).select_from(Order))
    result = erase_customer(sessions, Actor(None, "test"), int(wang["id"]))
    assert result["numbers_removed"] == 2 and result["vehicles_anonymised"] == 1 and result["tickets_anonymised"] == 1
    with sessions() as s:
        erased = s.get(Customer, int(wang["id"]))
        assert erased is not None and erased.name == "(erased)" and erased.do_not_call
        assert s.scalar(select(func.count()).select_from(PhoneNumber).where(PhoneNumber.e164 == "+8613800138000")) == 0
        assert s.scalar(select(func.count()).select_from(Order)) == orders_before  # statistics kept
        vin = s.scalars(select(Vehicle.vin).where(Vehicle.customer_id == erased.id)).one()
        assert "LVYZ" not in vin and len(vin) == 17
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.body is None and ticket.contact_e164 is None and "王小明" not in ticket.subject
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "customer.erased")).one()
        assert "王小明" not in str(audit.detail) and "13800138000" not in str(audit.detail)
    text = "".join(export_csv(sessions, "customers"))
    assert "王小明" not in text and "13800138000" not in text


BIRTHDAYS = """姓名,手机,客户类型,生日
王小明,13800138000,个人,1985-03-12
李华,13900139000,个人,1990/2/29
张三,13700137000,个人,2027-01-01
赵四,13600136000,个人,1899-12-31
顺达物流,13500135000,公司,2000-01-01
钱五,13400134000,个人,
孙六,13300133000,个人,1988年2月29日
周七,13200132000,个人,yesterday
"""


def test_birthdays_are_imported_checked_per_row_filled_in_later_and_erased(crm):
    today = dt.date(2026, 11, 23)
    table = ci.read_table("customers", BIRTHDAYS.encode("gb18030"))
    assert "birthday" in table.columns
    plan = ci.plan(crm, "customers", table, today=today)
    rows = _by_line(plan)
    assert rows[2][0] == "new" and rows[7][0] == "new" and rows[8][0] == "new"
    assert rows[3] == ("error", "birthday '1990/2/29' is not a date like 2025-10-08")  # 1990 is no leap year
    assert rows[4] == ("error", "birthday '2027-01-01' is in the future")
    assert rows[5] == ("error", "birthday '1899-12-31' is before 1900")
    assert rows[6] == ("error", "a company has no birthday (leave the birthday empty)")
    assert rows[9] == ("error", "birthday 'yesterday' is not a date like 2025-10-08")
    ci.write(crm, plan)
    with session_factory(crm)() as s:
        born = {name: day for name, day in s.execute(select(Customer.name, Customer.birthday))}
        qian_id = s.scalars(select(Customer.id).where(Customer.name == "钱五")).one()
    assert born == {"王小明": dt.date(1985, 3, 12), "钱五": None, "孙六": dt.date(1988, 2, 29)}
    # A later export with birthdays fills in the one missing, never overwrites one on file.
    later = "name,phone,birthday\n钱五,13400134000,1970-05-01\n王小明,13800138000,1999-01-01\n"
    again = ci.plan(crm, "customers", ci.read_table("customers", later.encode()), today=today)
    rows = _by_line(again)
    assert rows[2] == ("merged", f"number +8613400134000 already belongs to customer #{qian_id}: merged, "
                                 "birthday added")
    assert rows[3][0] == "unchanged"
    assert ci.write(crm, again)["birthdays_added"] == 1
    with session_factory(crm)() as s:
        qian = s.scalars(select(Customer).where(Customer.name == "钱五")).one()
        wang = s.scalars(select(Customer).where(Customer.name == "王小明")).one()
    assert qian.birthday == dt.date(1970, 5, 1) and wang.birthday == dt.date(1985, 3, 12)
    # The card reads it (and so its care reminder); erasure removes it.
    from screenpop.cards import load_card_data

    sessions = session_factory(crm)
    card = load_card_data(sessions, wang.id)
    assert card is not None and card["birthday"] == "1985-03-12"
    erase_customer(sessions, Actor(None, "test"), wang.id)
    with sessions() as s:
        assert s.get(Customer, wang.id).birthday is None  # type: ignore[union-attr]


def test_messy_rows_are_reported_by_their_first_line_and_import_nothing_half(crm):
    """A stray CR inside a field of an LF file (the csv module cut the row there and imported its halves), a quoted
    field over two lines (reported by its last line), a VIN that names no car (passed over in silence)."""
    data = ("name,phone,vin\n"
            "韩\r十七,13800138001,\n"
            '"李\n四",13800138002,\n'
            "王五,13800138003,NOTAVIN\n"
            "赵六,13800138004,\n").encode()
    table = ci.read_table("customers", data)
    assert [line for line, _cells in table.rows] == [2, 3, 5, 6]  # the quoted row by its first line
    before = _counts(crm)
    plan = ci.plan(crm, "customers", table)
    rows = _by_line(plan)
    assert rows[2] == ("error", "name contains control characters")  # the CR stays in the cell, refused there
    assert rows[3] == ("error", "name contains control characters")  # a line break inside a name: same
    assert rows[5] == ("error", "bad VIN 'NOTAVIN' (17 letters and digits, no I, O or Q)")
    assert rows[6][0] == "new" and len(plan.results) == 4
    ci.write(crm, plan)
    assert _counts(crm)["customers"] == before["customers"] + 1  # only 赵六: no half of 韩十七's row


def test_a_file_of_cr_line_ends_still_reads_as_lines():
    table = ci.read_table("customers", "name,phone\r王五,13800138003\r赵六,13800138004\r".encode())
    assert [cells for _line, cells in table.rows] == [["王五", "13800138003"], ["赵六", "13800138004"]]


def test_a_bidi_override_in_a_name_is_refused_like_a_control_character(crm):
    """U+202E in a customer's name makes it display reversed on the screen pop and the desktop (a name that reads
    as another's): the row is refused, the rest imported."""
    data = ("name,phone\n"
            "王\u202e五,13800138011\n"
            "赵\u2066六,13800138012\n"
            "钱七,13800138013\n").encode()
    table = ci.read_table("customers", data)
    before = _counts(crm)
    plan = ci.plan(crm, "customers", table)
    rows = _by_line(plan)
    assert rows[2] == ("error", "name contains control characters")
    assert rows[3] == ("error", "name contains control characters")
    assert rows[4][0] == "new"
    ci.write(crm, plan)
    assert _counts(crm)["customers"] == before["customers"] + 1


def test_the_templates_examples_do_not_land_on_demo_customers(tmp_path):
    """An unedited template imported into the demo makes a new customer (its numbers come from blocks the generator
    never uses) with a consultant the demo has, rather than merging into 张伟 (+8613800138000)."""
    from ccserver.demo import generate
    from ccserver.demo.reference import MOBILE_PREFIXES, STORES
    from routing.numbers import normalize

    examples = {normalize(f.example).e164 for kind in ci.KINDS for f in ci.FIELDS[kind] if "phone" in f.name}
    assert examples == {"+8617000001234", "+8689830001234"}
    assert "17000001234"[:3] not in MOBILE_PREFIXES
    haikou = next(s for s in STORES if s.area_code == "898")
    assert "3" not in haikou.landline_first_digits
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    generate(url, customers=2000, seed=7, as_of=dt.date(2026, 11, 23))
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.scalars(select(PhoneNumber.e164).where(PhoneNumber.e164.in_(examples))).all() == []
        consultants = {f.example for f in ci.FIELDS["customers"] if f.name == "sales_consultant"}
        assert conn.scalars(select(User.username).where(User.username.in_(consultants))).all() == list(consultants)
    engine.dispose()


def test_every_problem_of_a_row_is_said_at_once_in_column_order_and_in_chinese(crm):
    """A row with three mistakes is fixed in one pass: the report names them all, in the file's column order,
    and a zh-CN page reads each in Chinese. Rows with one mistake read as before; nothing of a refused row lands."""
    zh = translations("zh-CN").gettext
    customers = ("name,phone,language,store,birthday\n"
                 ",12345,fr,深圳奔驰4S店,1990-02-30\n"
                 "王五,13800138003,xx,,\n").encode()
    plan = ci.plan(crm, "customers", ci.read_table("customers", customers))
    rows = _by_line(plan)
    assert rows[2] == ("error", "name is empty; bad phone '12345': short code or extension; language 'fr' is not "
                                "zh or en; unknown store '深圳奔驰4S店'; birthday '1990-02-30' is not a date like "
                                "2025-10-08")
    assert rows[3] == ("error", "language 'xx' is not zh or en")
    first = translated(plan.results[0].message, zh)
    assert first.startswith("名称为空；phone '12345' 无效：短号或分机号；") and "未知门店" in first
    assert not plan.new_customers
    vehicles = (b"vin,customer_phone,brand,model,mileage_km\n"
                b"NOTAVIN,13800138000,,,12km\n")
    (result,) = ci.plan(crm, "vehicles", ci.read_table("vehicles", vehicles)).results
    assert result.message == ("bad VIN 'NOTAVIN' (17 letters and digits, no I, O or Q); brand and model are "
                              "required; mileage_km '12km' is not a whole number")
    orders = b"customer_phone,kind,amount,ordered_on\n13800138000,lunch,abc,2025-13-01\n"
    (result,) = ci.plan(crm, "orders", ci.read_table("orders", orders)).results
    assert result.message.startswith("no customer with number +8613800138000; import customers first; order kind "
                                     "'lunch' is not one of ")
    assert result.message.endswith("; amount 'abc' is not a number; ordered_on '2025-13-01' is not a date like "
                                   "2025-10-08")
    visits = b"customer_phone,store,opened_at,status\n13800138000,nowhere,yesterday,lost\n"
    (result,) = ci.plan(crm, "visits", ci.read_table("visits", visits)).results
    assert result.message.startswith("no customer with number +8613800138000; import customers first; unknown store "
                                     "'nowhere'; opened_at 'yesterday' is not a date")
    assert result.message.endswith("; status 'lost' is not one of booked, in_progress, waiting_parts, ready, "
                                   "collected, cancelled")
