"""Importable homes for the classes that tests/test_checks.py builds.

A test puts a model it defines (in an isolated app registry, so no migration
is needed) on this module with ``monkeypatch.setattr``; the check then finds it
at ``tests.checks_fixtures.<Name>`` like any ``frame_class_path``. The package
also is a database ENGINE: ``base.py`` is a backend derived from PostgreSQL's,
as PostGIS is.
"""

from stream_analysis import AbstractStream


class HalfStream(AbstractStream):
    """A stream that forgot ``get_stream_data``: it cannot be instantiated."""

    def is_stream_empty(self):
        return True

    def get_earliest_stream_time(self):
        return None

    def get_latest_stream_time(self):
        return None

    def delete_before(self, cutoff_datetime):
        return 0
