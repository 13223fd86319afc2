"""The store: the only package that speaks SQL (SQLite, WAL, numbered migrations)."""
