"""The local embedded engine is an environment from the first start."""

from django.db import migrations


def create_local(apps, schema_editor):
    Environment = apps.get_model("core", "Environment")
    Environment.objects.get_or_create(name="local", defaults={"kind": "local"})


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(create_local, migrations.RunPython.noop)]
