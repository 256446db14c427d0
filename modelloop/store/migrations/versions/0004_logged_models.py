"""MLflow 3's logged models: their metadata, tags and params (their files are
artifacts of the source run).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _key_value_table(table: str) -> None:
    op.create_table(
        table,
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["logged_models.model_id"],
            ondelete="CASCADE",
            name=f"fk_{table}_model_id_logged_models",
        ),
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("source_run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("model_type", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_logged_models_experiment_id_experiments",
        ),
        sa.ForeignKeyConstraint(
            ["source_run_id"],
            ["runs.run_id"],
            ondelete="CASCADE",
            name="fk_logged_models_source_run_id_runs",
        ),
    )
    op.create_index(
        "ix_logged_models_experiment_id_name", "logged_models", ["experiment_id", "name"]
    )
    op.create_index("ix_logged_models_source_run_id", "logged_models", ["source_run_id"])
    _key_value_table("logged_model_tags")
    _key_value_table("logged_model_params")


def downgrade() -> None:
    for table in ("logged_model_params", "logged_model_tags", "logged_models"):
        op.drop_table(table)
