"""The workers tier: end to end with real Dramatiq worker and periodiq scheduler processes
(``python -m pytest tests/workers``)."""
