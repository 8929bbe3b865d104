"""REMS forms typed as the published Patient Monitoring Form (issue 17).

Unsigned forms of ketaflow's first field list are carried to the published form's version
(valid values kept, free text that does not parse left blank for the clinician to answer).
Signed forms keep their version and their data: they are shown and exported as signed."""

from django.db import migrations

from ketaflow.treatment import rems


def forwards(apps, schema_editor):
    RemsForm = apps.get_model("treatment", "RemsForm")
    for form in RemsForm.objects.filter(form_version=rems.LEGACY, signed_at__isnull=True):
        form.data = rems.upgrade_legacy(form.data or {})
        form.form_version = rems.CURRENT
        form.save(update_fields=["data", "form_version"])


class Migration(migrations.Migration):
    dependencies = [("treatment", "0003_dose_waste")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
