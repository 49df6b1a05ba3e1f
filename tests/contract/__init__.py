"""Contract tests: what every store and view must do, run against memory, SQLite and PostgreSQL."""
