"""Tickets as work orders: the full lifecycle, categories, severity, two SLA clocks, assignees, satisfaction;
their history (ticket_events), SLA alarms raised once (ticket_sla_alarms), resolution call backs
(callback_tasks), appointments with race-safe seats, and the webhook outbox with its dead letters.

Existing rows are kept: status ``open`` becomes ``new`` (the status column is widened for
``customer_called_back``), callback requests get ``source = 'callback_request'`` and their number in
``contact_e164`` (from their de-duplication key). Downgrading maps the statuses back (new/assigned → open,
customer_called_back → resolved, cancelled → closed) and deletes ``inquiry`` tickets, a kind the older schema
cannot hold.

Revision ID: 0006_tickets
Revises: 0005_agent_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_tickets"
down_revision = "0005_agent_sessions"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
WHERE_SET = sa.text("dedupe_key IS NOT NULL")

OLD_KINDS = "kind IN ('complaint', 'repair', 'appointment', 'callback', 'praise')"
OLD_STATUSES = "status IN ('open', 'in_progress', 'resolved', 'closed')"
KINDS = "kind IN ('complaint', 'repair', 'appointment', 'callback', 'inquiry', 'praise')"
STATUSES = ("status IN ('new', 'assigned', 'in_progress', 'resolved', 'customer_called_back', 'closed', "
            "'cancelled')")
SEVERITIES = "severity IN ('low', 'normal', 'high', 'urgent')"
SOURCES = "source IS NULL OR source IN ('web', 'ivr', 'callback_request', 'abandoned_call')"
SATISFACTION = "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5"

NEW_COLUMNS = (
    ("category", sa.String(length=40)),
    ("source", sa.String(length=24)),
    ("assignee_id", sa.Integer()),
    ("vehicle_id", BIG_ID),
    ("uniqueid", sa.String(length=64)),
    ("contact_e164", sa.String(length=20)),
    ("arrived_at", TS),
    ("first_response_due_at", TS),
    ("first_responded_at", TS),
    ("called_back_at", TS),
    ("closed_at", TS),
    ("satisfaction", sa.SmallInteger()),
)


def upgrade() -> None:
    # SQLite rebuilds the table in batch mode; its partial unique index is made again afterwards.
    op.drop_index("ix_tickets_dedupe_key", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("ck_tickets_kind", type_="check")
        batch.drop_constraint("ck_tickets_status", type_="check")
        batch.alter_column("status", existing_type=sa.String(length=16), type_=sa.String(length=24),
                           existing_nullable=False)
        batch.add_column(sa.Column("severity", sa.String(length=8), nullable=False, server_default="normal"))
        for name, type_ in NEW_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    tickets = sa.table("tickets", sa.column("id"), sa.column("status"), sa.column("kind"), sa.column("source"),
                       sa.column("dedupe_key"), sa.column("contact_e164"))
    op.execute(tickets.update().where(tickets.c.status == "open").values(status="new"))
    # Callback requests so far: the key is "callback:<e164>:<day>".
    conn = op.get_bind()
    for ticket_id, key in conn.execute(sa.select(tickets.c.id, tickets.c.dedupe_key)
                                       .where(tickets.c.dedupe_key.like("callback:%"))):
        e164 = key.split(":")[1] if key.count(":") >= 2 else None
        conn.execute(tickets.update().where(tickets.c.id == ticket_id)
                     .values(source="callback_request", contact_e164=e164))
    with op.batch_alter_table("tickets") as batch:
        batch.create_check_constraint("ck_tickets_kind", sa.text(KINDS))
        batch.create_check_constraint("ck_tickets_status", sa.text(STATUSES))
        batch.create_check_constraint("ck_tickets_severity", sa.text(SEVERITIES))
        batch.create_check_constraint("ck_tickets_source", sa.text(SOURCES))
        batch.create_check_constraint("ck_tickets_satisfaction", sa.text(SATISFACTION))
        batch.create_foreign_key("fk_tickets_assignee_id_users", "users", ["assignee_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_foreign_key("fk_tickets_vehicle_id_vehicles", "vehicles", ["vehicle_id"], ["id"],
                                 ondelete="SET NULL")
    op.create_index("ix_tickets_dedupe_key", "tickets", ["dedupe_key"], unique=True,
                    postgresql_where=WHERE_SET, sqlite_where=WHERE_SET)
    op.create_index("ix_tickets_assignee_id", "tickets", ["assignee_id"])
    op.create_index("ix_tickets_vehicle_id", "tickets", ["vehicle_id"])
    op.create_index("ix_tickets_department_status", "tickets", ["department", "status"])
    op.create_index("ix_tickets_status_first_response_due_at", "tickets", ["status", "first_response_due_at"])

    op.create_table(
        "ticket_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_ticket_events_ticket_id_tickets",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name="fk_ticket_events_actor_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_events"),
    )
    op.create_index("ix_ticket_events_ticket_id_at", "ticket_events", ["ticket_id", "at"])
    op.create_index("ix_ticket_events_actor_id", "ticket_events", ["actor_id"])

    op.create_table(
        "ticket_sla_alarms",
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.CheckConstraint("clock IN ('first_response', 'resolution')", name="ck_ticket_sla_alarms_clock"),
        sa.CheckConstraint("stage IN ('warning', 'breach')", name="ck_ticket_sla_alarms_stage"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_ticket_sla_alarms_ticket_id_tickets",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id", "clock", "stage", "due_at", name="pk_ticket_sla_alarms"),
    )

    op.create_table(
        "callback_tasks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("done_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_callback_tasks_ticket_id_tickets",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_callback_tasks_customer_id_customers",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_callback_tasks_store_id_stores",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["done_by"], ["users.id"], name="fk_callback_tasks_done_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_callback_tasks"),
    )
    op.create_index("ix_callback_tasks_ticket_id", "callback_tasks", ["ticket_id"])
    op.create_index("ix_callback_tasks_customer_id", "callback_tasks", ["customer_id"])
    op.create_index("ix_callback_tasks_done_at_due_at", "callback_tasks", ["done_at", "due_at"])

    op.create_table(
        "appointments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("vehicle_id", BIG_ID, nullable=True),
        sa.Column("slot_start", TS, nullable=False),
        sa.Column("seat", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name="ck_appointments_status"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_appointments_ticket_id_tickets",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_appointments_store_id_stores",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_appointments_customer_id_customers",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name="fk_appointments_vehicle_id_vehicles",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_appointments"),
        sa.UniqueConstraint("ticket_id", name="uq_appointments_ticket_id"),
        sa.UniqueConstraint("store_id", "slot_start", "seat", name="uq_appointments_store_id_slot_start_seat"),
    )
    op.create_index("ix_appointments_customer_id", "appointments", ["customer_id"])

    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_next_attempt_at", "notifications", ["next_attempt_at"])

    op.create_table(
        "notification_dead_letters",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("notification_id", BIG_ID, nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("failed_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_dead_letters"),
    )
    op.create_index("ix_notification_dead_letters_failed_at", "notification_dead_letters", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_dead_letters_failed_at", table_name="notification_dead_letters")
    op.drop_table("notification_dead_letters")
    op.drop_index("ix_notifications_next_attempt_at", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_appointments_customer_id", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index("ix_callback_tasks_done_at_due_at", table_name="callback_tasks")
    op.drop_index("ix_callback_tasks_customer_id", table_name="callback_tasks")
    op.drop_index("ix_callback_tasks_ticket_id", table_name="callback_tasks")
    op.drop_table("callback_tasks")
    op.drop_table("ticket_sla_alarms")
    op.drop_index("ix_ticket_events_actor_id", table_name="ticket_events")
    op.drop_index("ix_ticket_events_ticket_id_at", table_name="ticket_events")
    op.drop_table("ticket_events")

    op.drop_index("ix_tickets_status_first_response_due_at", table_name="tickets")
    op.drop_index("ix_tickets_department_status", table_name="tickets")
    op.drop_index("ix_tickets_vehicle_id", table_name="tickets")
    op.drop_index("ix_tickets_assignee_id", table_name="tickets")
    op.drop_index("ix_tickets_dedupe_key", table_name="tickets")
    tickets = sa.table("tickets", sa.column("status"), sa.column("kind"))
    with op.batch_alter_table("tickets") as batch:
        for name in ("kind", "status", "severity", "source", "satisfaction"):
            batch.drop_constraint(f"ck_tickets_{name}", type_="check")
        batch.drop_constraint("fk_tickets_assignee_id_users", type_="foreignkey")
        batch.drop_constraint("fk_tickets_vehicle_id_vehicles", type_="foreignkey")
    op.execute(tickets.delete().where(tickets.c.kind == "inquiry"))
    for new, old in (("new", "open"), ("assigned", "open"), ("customer_called_back", "resolved"),
                     ("cancelled", "closed")):
        op.execute(tickets.update().where(tickets.c.status == new).values(status=old))
    with op.batch_alter_table("tickets") as batch:
        for name, _type in NEW_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("severity")
        batch.alter_column("status", existing_type=sa.String(length=24), type_=sa.String(length=16),
                           existing_nullable=False)
        batch.create_check_constraint("ck_tickets_kind", sa.text(OLD_KINDS))
        batch.create_check_constraint("ck_tickets_status", sa.text(OLD_STATUSES))
    op.create_index("ix_tickets_dedupe_key", "tickets", ["dedupe_key"], unique=True,
                    postgresql_where=WHERE_SET, sqlite_where=WHERE_SET)
