"""NoETL: a playbook orchestrator with an embedded SQLite store and a PostgreSQL store."""

__version__ = "0.1.0"
