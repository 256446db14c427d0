"""The metadata store: schema, migrations and one module per resource."""

from modelloop.store.engine import SCHEMA_HEAD, Database, normalize_db_url

__all__ = ["SCHEMA_HEAD", "Database", "normalize_db_url"]
