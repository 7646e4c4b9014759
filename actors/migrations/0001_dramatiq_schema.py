"""Creates dramatiq-postgres' queue tables, so ``manage.py migrate`` is the whole set-up."""

from django.conf import settings
from django.db import migrations


def _schema_and_prefix():
    options = getattr(settings, "DRAMATIQ_BROKER", {}).get("OPTIONS", {})
    return options.get("schema") or "dramatiq", options.get("prefix") or ""


def create_schema(apps, schema_editor):
    from dramatiq_postgres import init

    schema, prefix = _schema_and_prefix()
    with schema_editor.connection.cursor() as cursor:
        init(cursor, schema, prefix)


def drop_tables(apps, schema_editor):
    schema, prefix = _schema_and_prefix()
    quote = schema_editor.connection.ops.quote_name
    with schema_editor.connection.cursor() as cursor:
        for name in ("queue", "worker", "result", "state"):
            kind = "TYPE" if name == "state" else "TABLE"
            cursor.execute(f"DROP {kind} IF EXISTS {quote(schema)}.{quote(prefix + name)}")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_schema, drop_tables)]
