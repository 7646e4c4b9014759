"""A client of the original stream_analysis, ported mechanically to Python 3 and Django 5.

It is written as the original's users wrote their apps (after the public project
the original was extracted from: a tweet stream, a "thermometer" of feelings, a
demo count and a word "map"), and it must run here unchanged:
tests/workers/test_moving_from_the_original.py runs it with a real worker and
scheduler, tests/db/test_moving_from_the_original.py the rest of its code.

One habit of that project is left out on purpose: its ``twitter_analysis``
package imported its models from ``__init__.py``, which Django >= 1.7 refuses
while it loads the apps. tests/db/test_moving_from_the_original.py shows the error
this app then gives, and docs/moving-from-the-original.md the fix.
"""
