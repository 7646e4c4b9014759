"""A database backend derived from PostgreSQL's (as PostGIS's is), for the E008 check."""

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    pass
