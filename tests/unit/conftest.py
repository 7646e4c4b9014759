"""The unit tier's fixtures. Run alone (``python -m pytest tests/unit``), pytest does not
read ``tests/conftest.py``, whose session fixtures set up the test database: the fixtures
unit tests need are taken from it here, one by one."""

from tests.conftest import processes

__all__ = ["processes"]
