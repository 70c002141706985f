"""GET /api/customers/lookup and GET /api/customers over the in-process router (demo data, SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

import pytest
from twisted.internet import task

from ccserver.customers.cache import MemorySummaryCache
from ccserver.customers.directory import CustomerDirectory, Identity
from ccserver.db.engine import make_engine, session_factory
from ccserver.demo import generate
from ccserver.identification import IdentificationService
from routing.decision import CustomerSummary
from tests.web_support import MemoryUsers, call, inline_blocking, make_router

AS_OF = date(2026, 11, 23)


@pytest.fixture
def users() -> MemoryUsers:
    store = MemoryUsers()
    store.add(1, "admin", "admin", "admin-pass")
    store.add(2, "agent8001", "agent", "agent-pass")
    store.add(3, "sup", "supervisor", "sup-pass")
    store.add(4, "camp", "campaign_manager", "camp-pass")
    store.add(5, "dept", "department", "dept-pass")
    return store


def identification(directory, cache=None) -> IdentificationService:
    """As `ccserver run` gives the web its lookups: the identification service over the directory and a cache."""
    return IdentificationService(directory, cache if cache is not None else MemorySummaryCache(), region="CN",
                                 run_blocking=inline_blocking, clock=task.Clock())


@pytest.fixture
def served(db_url, users):
    generate(db_url, customers=300, seed=7, as_of=AS_OF)
    engine = make_engine(db_url)
    router, ctx = make_router(users)
    ctx.customers = CustomerDirectory(session_factory(engine))
    ctx.identification = identification(ctx.customers)
    yield router, ctx
    engine.dispose()


@pytest.fixture
def api(served):
    return served[0]


def token(router, username, password):
    reply = call(router, "POST", "/api/login", json_body={"username": username, "password": password})
    assert reply.status == 200
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def get(router, path, headers):
    return call(router, "GET", path, headers=headers)


def test_auth_required_and_roles(api):
    assert get(api, "/api/customers/lookup?phone=13800138000", {}).status == 401
    assert get(api, "/api/customers", {"Authorization": "Bearer forged"}).status == 401
    agent = token(api, "agent8001", "agent-pass")
    camp = token(api, "camp", "camp-pass")
    assert get(api, "/api/customers/lookup?phone=13800138000", agent).status == 200
    assert get(api, "/api/customers/lookup?phone=13800138000", token(api, "dept", "dept-pass")).status == 200
    assert get(api, "/api/customers/lookup?phone=13800138000", camp).status == 403
    assert get(api, "/api/customers?tier=gold", agent).status == 403
    assert get(api, "/api/customers?tier=gold", camp).status == 200
    assert get(api, "/api/customers?tier=gold", token(api, "sup", "sup-pass")).status == 200
    assert get(api, "/api/customers?tier=gold", token(api, "admin", "admin-pass")).status == 200


@pytest.mark.parametrize(
    "query, e164, name, tier",
    [
        ("13800138000", "+8613800138000", "张伟", "diamond"),
        ("+86 139-1234-5678", "+8613912345678", "刘洋", "silver"),
        ("013700000001", "+8613700000001", "陈静", "bronze"),
        ("sip:+8613600000002@pbx", "+8613600000002", "王磊", "prospect"),
        ("１３８００１３８０００", "+8613800138000", "张伟", "diamond"),  # full-width, from a Chinese input method
    ],
)
def test_lookup_of_each_demo_caller(api, query, e164, name, tier):
    reply = get(api, "/api/customers/lookup?phone=" + quote(query), token(api, "agent8001", "agent-pass"))
    assert reply.status == 200
    assert reply.header("content-type") == "application/json; charset=utf-8"
    body = reply.json()
    assert body["query"] == query and body["e164"] == e164 and body["status"] == "ok"
    c = body["customer"]
    assert c["name"] == name and c["tier"] == tier and e164 in c["numbers"]
    assert isinstance(c["id"], int) and isinstance(c["score"], float)
    assert set(c) == {"id", "name", "numbers", "tier", "score", "vip", "vehicle_count", "score_components",
                      "reasons"}  # fmt: skip
    assert body["ambiguous"] is False and body["others"] == []
    assert name.encode() in reply.body  # UTF-8, not \\u escapes
    if name == "张伟":
        assert c["vip"] is True and c["vehicle_count"] == 2 and len(c["numbers"]) == 2
        assert c["reasons"] and any("vehicle purchases" in r for r in c["reasons"])
    if name == "陈静":
        assert "1 open complaint (risk)" in c["reasons"]


def test_unknown_number_is_not_created(api):
    headers = token(api, "agent8001", "agent-pass")
    for _ in range(2):
        body = get(api, "/api/customers/lookup?phone=02158881234", headers).json()
        assert body == {"query": "02158881234", "e164": "+862158881234", "status": "ok", "customer": None,
                        "ambiguous": False, "others": []}  # fmt: skip


@pytest.mark.parametrize("query", ["anonymous", "Restricted", ""])
def test_withheld(api, query):
    headers = token(api, "agent8001", "agent-pass")
    reply = get(api, "/api/customers/lookup?phone=" + quote(query or "<unknown>"), headers)
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "withheld" and body["customer"] is None and body["e164"] is None


@pytest.mark.parametrize("query", ["hello", "10086", "13800'; drop table customers;--", "١٣٨٠٠١٣٨٠٠٠",
                                   "9" * 200])  # fmt: skip
def test_garbage_phone_is_400(api, query):
    headers = token(api, "agent8001", "agent-pass")
    reply = get(api, "/api/customers/lookup?phone=" + quote(query), headers)
    assert reply.status == 400
    body = reply.json()
    assert body["error"].startswith("not a usable phone number") and body["number_status"] == "invalid"
    assert get(api, "/api/customers/lookup?phone=13800138000", headers).status == 200  # still there


def test_missing_phone_is_400(api):
    headers = token(api, "agent8001", "agent-pass")
    for path in ("/api/customers/lookup", "/api/customers/lookup?phone=", "/api/customers/lookup?phone=%20"):
        reply = get(api, path, headers)
        assert reply.status == 400 and "phone" in reply.json()["error"]


def test_list_by_tier_and_limit(api):
    headers = token(api, "sup", "sup-pass")
    body = get(api, "/api/customers?tier=gold", headers).json()
    gold = body["customers"]
    assert gold and all(c["tier"] == "gold" for c in gold)
    assert [c["score"] for c in gold] == sorted((c["score"] for c in gold), reverse=True)
    assert set(gold[0]) == {"id", "name", "numbers", "tier", "score", "vehicle_count"}
    assert len(get(api, "/api/customers", headers).json()["customers"]) == 50
    top = get(api, "/api/customers?limit=3", headers).json()["customers"]
    assert len(top) == 3 and top[0]["score"] >= top[1]["score"] >= top[2]["score"]
    assert len(get(api, "/api/customers?limit=500", headers).json()["customers"]) == 300
    diamond = get(api, "/api/customers?tier=diamond&limit=1", headers).json()["customers"]
    assert len(diamond) == 1


@pytest.mark.parametrize("query", ["tier=platinum", "tier=GOLD", "tier=%20", "limit=0", "limit=501", "limit=abc",
                                   "limit=-1", "limit=1.5", "limit=%EF%BC%95"])  # fmt: skip
def test_list_rejects_bad_params(api, query):
    reply = get(api, "/api/customers?" + query, token(api, "sup", "sup-pass"))
    assert reply.status == 400 and reply.json()["error"]


def test_not_configured_is_503(users):
    router, _ = make_router(users)
    reply = get(router, "/api/customers/lookup?phone=13800138000", token(router, "agent8001", "agent-pass"))
    assert reply.status == 503


def test_lookup_asks_the_identification_service_and_counts_no_call(served):
    """The number is looked up through identification's cache (then SQL, whose answer is cached), not as a call:
    routing's 24-hour count for the number stays untouched, and no prospect is made."""
    router, ctx = served
    cache = MemorySummaryCache()
    ctx.identification = identification(ctx.customers, cache)
    headers = token(router, "agent8001", "agent-pass")
    first = get(router, "/api/customers/lookup?phone=13800138000", headers).json()
    assert first["customer"]["name"] == "张伟"
    cached = cache.lookup_now("+8613800138000", 0.0)  # a routed call now: counted once, this one
    assert cached[1] == 1 and cached[0] is not None and cached[0].customer.id == str(first["customer"]["id"])
    # What the cache says is what the API answers (the number moved to another customer, as routing would see it).
    other = get(router, "/api/customers/lookup?phone=13912345678", headers).json()["customer"]
    cache.store_now("+8613800138000", Identity(CustomerSummary(str(other["id"]), other["name"]), (7,)))
    moved = get(router, "/api/customers/lookup?phone=13800138000", headers).json()
    assert moved["customer"]["name"] == "刘洋" and moved["others"] == [7]


def test_lookup_that_could_not_answer_is_503(served):
    router, ctx = served

    class Down:
        def identify(self, *args, **kwargs):
            raise ConnectionError("could not connect to server")

    ctx.identification = identification(Down())
    reply = get(router, "/api/customers/lookup?phone=13800138000", token(router, "agent8001", "agent-pass"))
    assert reply.status == 503 and "try again" in reply.json()["error"]
