"""Initial schema: organisation, calendar, users, customers and their phones/vehicles/orders/visits,
calls, tickets, audit log.

Written out explicitly (generated once from the models, then reviewed); later revisions must not import
ccserver.db.models, whose shape moves on.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23 07:29:30.300848
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; SQLite needs exactly INTEGER for its rowid-backed autoincrement.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dealer_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dealer_groups"),
        sa.UniqueConstraint("name", name="uq_dealer_groups_name"),
    )
    op.create_table(
        "phone_numbers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('mobile', 'landline', 'toll_free', 'other')", name="ck_phone_numbers_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_phone_numbers"),
        sa.UniqueConstraint("e164", name="uq_phone_numbers_e164"),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("brand", sa.String(length=60), nullable=False),
        sa.Column("city", sa.String(length=60), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"], ["dealer_groups.id"], name="fk_stores_group_id_dealer_groups", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stores"),
        sa.UniqueConstraint("code", name="uq_stores_code"),
    )
    op.create_index("ix_stores_group_id", "stores", ["group_id"])

    op.create_table(
        "business_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(length=16), nullable=True),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.CheckConstraint(
            "line IS NULL OR line IN ('sales', 'service', 'complaints', 'insurance', 'hotline')",
            name="ck_business_hours_line",
        ),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_business_hours_weekday"),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name="fk_business_hours_store_id_stores", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_business_hours"),
    )
    op.create_index("ix_business_hours_store_weekday", "business_hours", ["store_id", "weekday"])

    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_holidays_store_id_stores", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_holidays"),
    )
    op.create_index("ix_holidays_day", "holidays", ["day"])
    op.create_index("ix_holidays_store_id", "holidays", ["store_id"])

    op.create_table(
        "makeup_workdays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name="fk_makeup_workdays_store_id_stores", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_makeup_workdays"),
    )
    op.create_index("ix_makeup_workdays_day", "makeup_workdays", ["day"])
    op.create_index("ix_makeup_workdays_store_id", "makeup_workdays", ["store_id"])

    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("line", sa.String(length=16), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "line IS NULL OR line IN ('sales', 'service', 'complaints', 'insurance', 'hotline')", name="ck_queues_line"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_queues_store_id_stores", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_queues"),
        sa.UniqueConstraint("name", name="uq_queues_name"),
    )
    op.create_index("ix_queues_store_id", "queues", ["store_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("extension", sa.String(length=20), nullable=True),
        sa.Column("interface", sa.String(length=80), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('agent', 'supervisor', 'department', 'campaign_manager', 'admin')", name="ck_users_role"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_users_store_id_stores", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_index("ix_users_extension", "users", ["extension"])
    op.create_index("ix_users_interface", "users", ["interface"])
    op.create_index("ix_users_store_id", "users", ["store_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name="fk_audit_log_actor_id_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    op.create_table(
        "customers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("lifecycle", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("membership_level", sa.SmallInteger(), nullable=False),
        sa.Column("membership_points", sa.Integer(), nullable=False),
        sa.Column("manual_vip", sa.Boolean(), nullable=False),
        sa.Column("sales_consultant_id", sa.Integer(), nullable=True),
        sa.Column("service_advisor_id", sa.Integer(), nullable=True),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("do_not_call", sa.Boolean(), nullable=False),
        sa.Column("value_score", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("score_components", sa.JSON(), nullable=True),
        sa.Column("score_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("home_store_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('person', 'company')", name="ck_customers_kind"),
        sa.CheckConstraint("language IN ('zh', 'en')", name="ck_customers_language"),
        sa.CheckConstraint("lifecycle IN ('target', 'prospect', 'customer', 'dormant')", name="ck_customers_lifecycle"),
        sa.CheckConstraint("tier IN ('diamond', 'gold', 'silver', 'bronze', 'prospect')", name="ck_customers_tier"),
        sa.ForeignKeyConstraint(
            ["home_store_id"], ["stores.id"], name="fk_customers_home_store_id_stores", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sales_consultant_id"], ["users.id"], name="fk_customers_sales_consultant_id_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["service_advisor_id"], ["users.id"], name="fk_customers_service_advisor_id_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_index("ix_customers_home_store_id", "customers", ["home_store_id"])
    op.create_index("ix_customers_name", "customers", ["name"])
    op.create_index("ix_customers_sales_consultant_id", "customers", ["sales_consultant_id"])
    op.create_index("ix_customers_service_advisor_id", "customers", ["service_advisor_id"])
    op.create_index("ix_customers_tier_score", "customers", ["tier", "value_score"])
    op.create_index("ix_customers_value_score", "customers", ["value_score"])

    op.create_table(
        "dids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("line", sa.String(length=16), nullable=False),
        sa.Column("default_queue_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.CheckConstraint("line IN ('sales', 'service', 'complaints', 'insurance', 'hotline')", name="ck_dids_line"),
        sa.ForeignKeyConstraint(
            ["default_queue_id"], ["queues.id"], name="fk_dids_default_queue_id_queues", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_dids_store_id_stores", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_dids"),
        sa.UniqueConstraint("number", name="uq_dids_number"),
    )
    op.create_index("ix_dids_default_queue_id", "dids", ["default_queue_id"])
    op.create_index("ix_dids_store_id", "dids", ["store_id"])

    op.create_table(
        "calls",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("caller_raw", sa.String(length=64), nullable=True),
        sa.Column("caller_e164", sa.String(length=20), nullable=True),
        sa.Column("dialed", sa.String(length=32), nullable=True),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("agent_interface", sa.String(length=80), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("talk_seconds", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("ivr_path", sa.String(length=255), nullable=True),
        sa.Column("disposition", sa.String(length=80), nullable=True),
        sa.Column("recording_path", sa.String(length=255), nullable=True),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name="ck_calls_direction"),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('answered', 'abandoned', 'no_answer', 'busy', 'failed', 'ivr_hangup', "
            "'ivr_self_service', 'voicemail', 'transferred', 'in_progress')",
            name="ck_calls_outcome",
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name="fk_calls_agent_id_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_calls_customer_id_customers", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("server", "uniqueid", name="uq_calls_server_uniqueid"),
    )
    op.create_index("ix_calls_agent_entered_at", "calls", ["agent_id", "entered_at"])
    op.create_index("ix_calls_caller_e164", "calls", ["caller_e164"])
    op.create_index("ix_calls_customer_entered_at", "calls", ["customer_id", "entered_at"])
    op.create_index("ix_calls_entered_at", "calls", ["entered_at"])
    op.create_index("ix_calls_linkedid", "calls", ["linkedid"])
    op.create_index("ix_calls_queue_entered_at", "calls", ["queue", "entered_at"])

    op.create_table(
        "company_contacts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("company_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=80), nullable=True),
        sa.Column("phone_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["customers.id"], name="fk_company_contacts_company_id_customers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phone_numbers.id"], name="fk_company_contacts_phone_id_phone_numbers", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_company_contacts"),
    )
    op.create_index("ix_company_contacts_company_id", "company_contacts", ["company_id"])
    op.create_index("ix_company_contacts_phone_id", "company_contacts", ["phone_id"])

    op.create_table(
        "customer_phones",
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("phone_id", BIG_ID, nullable=False),
        sa.Column("label", sa.String(length=40), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_phones_customer_id_customers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phone_numbers.id"], name="fk_customer_phones_phone_id_phone_numbers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("customer_id", "phone_id", name="pk_customer_phones"),
    )
    op.create_index("ix_customer_phones_phone_id", "customer_phones", ["phone_id"])

    op.create_table(
        "vehicles",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("brand", sa.String(length=60), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=True),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=True),
        sa.Column("mileage_km", sa.Integer(), nullable=True),
        sa.Column("next_maintenance_due", sa.Date(), nullable=True),
        sa.Column("insurance_expiry", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_vehicles_customer_id_customers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_vehicles"),
        sa.UniqueConstraint("vin", name="uq_vehicles_vin"),
    )
    op.create_index("ix_vehicles_customer_id", "vehicles", ["customer_id"])
    op.create_index("ix_vehicles_insurance_expiry", "vehicles", ["insurance_expiry"])
    op.create_index("ix_vehicles_next_maintenance_due", "vehicles", ["next_maintenance_due"])
    op.create_index("ix_vehicles_plate", "vehicles", ["plate"])

    op.create_table(
        "orders",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("vehicle_id", BIG_ID, nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("ordered_on", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('vehicle_sale', 'service', 'insurance', 'accessories', 'used_car')", name="ck_orders_kind"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_orders_customer_id_customers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_orders_store_id_stores", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name="fk_orders_vehicle_id_vehicles", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_customer_ordered_on", "orders", ["customer_id", "ordered_on"])
    op.create_index("ix_orders_store_id", "orders", ["store_id"])
    op.create_index("ix_orders_vehicle_id", "orders", ["vehicle_id"])

    op.create_table(
        "service_visits",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("vehicle_id", BIG_ID, nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("advisor_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('booked', 'in_progress', 'waiting_parts', 'ready', 'collected', 'cancelled')",
            name="ck_service_visits_status",
        ),
        sa.ForeignKeyConstraint(
            ["advisor_id"], ["users.id"], name="fk_service_visits_advisor_id_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_service_visits_customer_id_customers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name="fk_service_visits_store_id_stores", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name="fk_service_visits_vehicle_id_vehicles", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_service_visits"),
    )
    op.create_index("ix_service_visits_advisor_id", "service_visits", ["advisor_id"])
    op.create_index("ix_service_visits_customer_opened_at", "service_visits", ["customer_id", "opened_at"])
    op.create_index("ix_service_visits_status", "service_visits", ["status"])
    op.create_index("ix_service_visits_store_id", "service_visits", ["store_id"])
    op.create_index("ix_service_visits_vehicle_id", "service_visits", ["vehicle_id"])

    op.create_table(
        "tickets",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=40), nullable=True),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("call_id", BIG_ID, nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('complaint', 'repair', 'appointment', 'callback', 'praise')", name="ck_tickets_kind"
        ),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'resolved', 'closed')", name="ck_tickets_status"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name="fk_tickets_call_id_calls", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_tickets_created_by_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_tickets_customer_id_customers", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_tickets_store_id_stores", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
    )
    op.create_index("ix_tickets_call_id", "tickets", ["call_id"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])
    op.create_index("ix_tickets_status_sla_due_at", "tickets", ["status", "sla_due_at"])
    op.create_index("ix_tickets_store_id", "tickets", ["store_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_store_id", table_name="tickets")
    op.drop_index("ix_tickets_status_sla_due_at", table_name="tickets")
    op.drop_index("ix_tickets_customer_id", table_name="tickets")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.drop_index("ix_tickets_call_id", table_name="tickets")

    op.drop_table("tickets")
    op.drop_index("ix_service_visits_vehicle_id", table_name="service_visits")
    op.drop_index("ix_service_visits_store_id", table_name="service_visits")
    op.drop_index("ix_service_visits_status", table_name="service_visits")
    op.drop_index("ix_service_visits_customer_opened_at", table_name="service_visits")
    op.drop_index("ix_service_visits_advisor_id", table_name="service_visits")

    op.drop_table("service_visits")
    op.drop_index("ix_orders_vehicle_id", table_name="orders")
    op.drop_index("ix_orders_store_id", table_name="orders")
    op.drop_index("ix_orders_customer_ordered_on", table_name="orders")

    op.drop_table("orders")
    op.drop_index("ix_vehicles_plate", table_name="vehicles")
    op.drop_index("ix_vehicles_next_maintenance_due", table_name="vehicles")
    op.drop_index("ix_vehicles_insurance_expiry", table_name="vehicles")
    op.drop_index("ix_vehicles_customer_id", table_name="vehicles")

    op.drop_table("vehicles")
    op.drop_index("ix_customer_phones_phone_id", table_name="customer_phones")

    op.drop_table("customer_phones")
    op.drop_index("ix_company_contacts_phone_id", table_name="company_contacts")
    op.drop_index("ix_company_contacts_company_id", table_name="company_contacts")

    op.drop_table("company_contacts")
    op.drop_index("ix_calls_queue_entered_at", table_name="calls")
    op.drop_index("ix_calls_linkedid", table_name="calls")
    op.drop_index("ix_calls_entered_at", table_name="calls")
    op.drop_index("ix_calls_customer_entered_at", table_name="calls")
    op.drop_index("ix_calls_caller_e164", table_name="calls")
    op.drop_index("ix_calls_agent_entered_at", table_name="calls")

    op.drop_table("calls")
    op.drop_index("ix_dids_store_id", table_name="dids")
    op.drop_index("ix_dids_default_queue_id", table_name="dids")

    op.drop_table("dids")
    op.drop_index("ix_customers_value_score", table_name="customers")
    op.drop_index("ix_customers_tier_score", table_name="customers")
    op.drop_index("ix_customers_service_advisor_id", table_name="customers")
    op.drop_index("ix_customers_sales_consultant_id", table_name="customers")
    op.drop_index("ix_customers_name", table_name="customers")
    op.drop_index("ix_customers_home_store_id", table_name="customers")

    op.drop_table("customers")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_index("ix_users_store_id", table_name="users")
    op.drop_index("ix_users_interface", table_name="users")
    op.drop_index("ix_users_extension", table_name="users")

    op.drop_table("users")
    op.drop_index("ix_queues_store_id", table_name="queues")

    op.drop_table("queues")
    op.drop_index("ix_makeup_workdays_store_id", table_name="makeup_workdays")
    op.drop_index("ix_makeup_workdays_day", table_name="makeup_workdays")

    op.drop_table("makeup_workdays")
    op.drop_index("ix_holidays_store_id", table_name="holidays")
    op.drop_index("ix_holidays_day", table_name="holidays")

    op.drop_table("holidays")
    op.drop_index("ix_business_hours_store_weekday", table_name="business_hours")

    op.drop_table("business_hours")
    op.drop_index("ix_stores_group_id", table_name="stores")

    op.drop_table("stores")
    op.drop_table("phone_numbers")
    op.drop_table("dealer_groups")
