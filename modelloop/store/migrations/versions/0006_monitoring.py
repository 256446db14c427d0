"""Monitoring: monitors, scored windows, per-window metrics, alerts and alert events.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("reference", sa.String(256), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("windows", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.Column("updated_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitors"),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("monitor", "seq", name="pk_monitor_windows"),
        sa.ForeignKeyConstraint(
            ["monitor"],
            ["monitors.name"],
            ondelete="CASCADE",
            name="fk_monitor_windows_monitor_monitors",
        ),
    )
    op.create_table(
        "monitor_metrics",
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("monitor", "name", "seq", name="pk_monitor_metrics"),
        sa.ForeignKeyConstraint(
            ["monitor", "seq"],
            ["monitor_windows.monitor", "monitor_windows.seq"],
            ondelete="CASCADE",
            name="fk_monitor_metrics_monitor_monitor_windows",
        ),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("column_name", sa.String(256), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("fired_time", sa.BigInteger, nullable=False),
        sa.Column("fired_window", sa.Integer, nullable=False),
        sa.Column("resolved_time", sa.BigInteger, nullable=True),
        sa.Column("resolved_window", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        sa.ForeignKeyConstraint(
            ["monitor"], ["monitors.name"], ondelete="CASCADE", name="fk_alerts_monitor_monitors"
        ),
    )
    op.create_index("ix_alerts_monitor_state", "alerts", ["monitor", "state"])
    op.create_index("ix_alerts_fired_time", "alerts", ["fired_time"])
    op.create_table(
        "alert_events",
        sa.Column("id", _BigId, nullable=False, autoincrement=True),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.alert_id"],
            ondelete="CASCADE",
            name="fk_alert_events_alert_id_alerts",
        ),
    )
    op.create_index("ix_alert_events_delivery", "alert_events", ["delivery"])
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("alerts")
    op.drop_table("monitor_metrics")
    op.drop_table("monitor_windows")
    op.drop_table("monitors")
