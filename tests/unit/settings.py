"""The test settings with a database that is never connected to: ``pytest tests/unit``
alone (pure frame arithmetic, system checks, the layout, the connection budget,
the deployment files) starts no PostgreSQL.

Selected by ``tests/unit/pytest.ini``, which pytest reads only when it is given
this folder; the full suite (``python -m pytest``) runs these tests with
``tests.settings`` like every other.
"""

import os

# database_config() reads DATABASE_URL instead of starting the embedded server. Nothing
# here listens on port 9: a test that tried to connect would fail at once (pytest-django
# blocks database access outside tests marked django_db anyway).
os.environ["DATABASE_URL"] = "postgres://unit-tests@127.0.0.1:9/no_database_in_unit_tests"

from tests.settings import *  # noqa: F403
