"""The database tier: tests against a real PostgreSQL, no worker process
(``python -m pytest tests/db``)."""
