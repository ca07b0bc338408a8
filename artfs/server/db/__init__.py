"""Registry metadata: the schema (SQLAlchemy Core), its migrations and the engine."""
