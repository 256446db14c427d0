"""The metadata schema (SQLAlchemy Core tables).

Alembic migrations under ``store/migrations`` create exactly these tables; a test
checks that the two agree. Times are integer milliseconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# SQLite only aliases rowid for "INTEGER PRIMARY KEY"; PostgreSQL wants 64 bits.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    Index(None, "experiment_id", "lifecycle_stage", "start_time"),
    Index(None, "parent_run_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key"),
)

# Every point of every metric. NULL value means NaN (SQLite cannot store NaN).
metrics = Table(
    "metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index(None, "run_id", "key", "step"),
)

# The latest point per (run, metric): what search filters and orders on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    # Covering for search: a filter range or an order-by walk reads no table rows.
    Index(None, "key", "value", "run_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("source", Text, nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("num_rows", BigInteger, nullable=True),
    Column("schema_json", Text, nullable=False),
    Column("profile_json", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_digest",
        String(64),
        ForeignKey("datasets.digest", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("context", String(64), primary_key=True),
    Index(None, "dataset_digest"),
)

# A run's artifact tree: relative path -> content-addressed blob.
run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Index(None, "digest"),
)


# Authentication (migration 0002). A user's password is stored only as a KDF hash
# (``modelloop.accounts``); an API token only as its sha256.
users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("created_time", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("last_used_time", BigInteger, nullable=True),
    Column("revoked_time", BigInteger, nullable=True),
    Index(None, "user_id"),
)

# Append-only: who did what, when, to which object. Written in the transaction of
# the change it records.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(256), nullable=False),
    Column("details", Text, nullable=False),
    Index(None, "time"),
    Index(None, "actor", "time"),
    Index(None, "object_type", "object_id"),
)

# The model registry (migration 0003). ``next_version`` is the version counter:
# registering increments it with one UPDATE, which serialises concurrent
# registrations on the model's row, so two of them never get the same number.
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=False),
    Column("intended_use", Text, nullable=False),
    Column("limitations", Text, nullable=False),
    Column("policy", Text, nullable=True),
    Column("next_version", Integer, nullable=False),
    Column("user_id", String(256), nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("artifact_path", Text, nullable=True),
    Column("model_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("user_id", String(256), nullable=True),
    Column("flavor", String(32), nullable=True),
    Column("signature", Text, nullable=True),
    Column("size_bytes", BigInteger, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Index(None, "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

# Append-only history of alias moves: which version held an alias at any moment.
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("verdict_id", BigInteger, nullable=True),
    Index(None, "name", "alias", "time"),
)

promotion_verdicts = Table(
    "promotion_verdicts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(256), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("forced", Boolean, nullable=False),
    Column("moved", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("checks", Text, nullable=False),
    Column("policy", Text, nullable=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index(None, "name", "version"),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("dataset_name", String(256), nullable=True),
    Column("dataset_digest", String(64), nullable=True),
    Column("result", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index(None, "name", "version"),
)

registered_datasets = Table(
    "registered_datasets",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("blob_digest", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("columns", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
)

# Columns holding blob digests; gc keeps every blob any of them refers to.
BLOB_REFERENCES = (run_artifacts.c.digest, registered_datasets.c.blob_digest)

# MLflow 3's logged models (migration 0004). A logged model's files are artifacts
# of its source run under ``_logged_models/<model_id>/``, so these tables hold only
# its metadata; deleting a run's row removes its logged models with it.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "source_run_id",
        String(32),
        ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("model_type", String(256), nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Index(None, "experiment_id", "name"),
    Index(None, "source_run_id"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Deployments (migration 0005): every change of a deployment's spec is a new,
# numbered revision; the newest is the live one. A rollback is a new revision with
# the previous spec, so the history stays linear and every step is audited.
deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("created_time", BigInteger, nullable=False),
)

# Monitoring (migration 0006). ``windows`` on a monitor is the number of windows
# scored; recording window N+1 moves it with a compare-and-set UPDATE, so two
# concurrent runs of one monitor can never score the same window twice. Metrics are
# one row per (window, metric) so every metric's history is one indexed range scan.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("deployment", String(256), nullable=False),
    Column("reference", String(256), nullable=False),
    Column("config", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("windows", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
)

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column(
        "monitor", String(256), ForeignKey("monitors.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("seq", Integer, primary_key=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("details", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
)

monitor_metrics = Table(
    "monitor_metrics",
    metadata,
    Column("monitor", String(256), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("value", Float, nullable=True),
    ForeignKeyConstraint(
        ["monitor", "seq"],
        ["monitor_windows.monitor", "monitor_windows.seq"],
        ondelete="CASCADE",
        name="fk_monitor_metrics_monitor_monitor_windows",
    ),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("monitor", String(256), ForeignKey("monitors.name", ondelete="CASCADE"), nullable=False),
    Column("key", String(512), nullable=False),
    Column("rule", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("metric", String(256), nullable=False),
    Column("column_name", String(256), nullable=True),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("fired_time", BigInteger, nullable=False),
    Column("fired_window", Integer, nullable=False),
    Column("resolved_time", BigInteger, nullable=True),
    Column("resolved_window", Integer, nullable=True),
    Index(None, "monitor", "state"),
    Index(None, "fired_time"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "alert_id", String(32), ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False
    ),
    Column("monitor", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("delivery", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Index(None, "delivery"),
    Index(None, "alert_id"),
)
