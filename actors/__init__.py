"""The runtime of stream_analysis: Dramatiq actors, the broker, the scheduler tick.

Add ``"actors"`` to ``INSTALLED_APPS`` (after ``"django_dramatiq"``):
``manage.py rundramatiq`` then finds the actors in ``actors.tasks``.
"""
