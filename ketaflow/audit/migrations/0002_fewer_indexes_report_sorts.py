"""Cheaper appends, indexed report sorts.

- The single-column indexes Django adds to foreign keys are dropped: every composite index
  starts with the clinic, so they only added work to each append. The drop is done with
  ``DROP INDEX`` (state and database separated) because ``AlterField`` would copy the whole
  table on SQLite.
- Each report sort has an index ending in ``at``, and the emergency filter a partial index.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Django's names for the foreign keys' indexes in 0001 (derived from table and column only).
FK_INDEXES = {
    "clinic_id": "audit_auditevent_clinic_id_8b98597b",
    "actor_id": "audit_auditevent_actor_id_270bb4b7",
    "patient_id": "audit_auditevent_patient_id_82c45eaf",
}


def _fk(to):
    return models.ForeignKey(
        blank=True,
        db_index=False,
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to=to,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("patients", "0001_initial"),
        ("tenancy", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent", name="actor", field=_fk(settings.AUTH_USER_MODEL)
                ),
                migrations.AlterField(
                    model_name="auditevent", name="clinic", field=_fk("tenancy.clinic")
                ),
                migrations.AlterField(
                    model_name="auditevent", name="patient", field=_fk("patients.patient")
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "audit_auditevent" ("{column}")',
                )
                for column, name in FK_INDEXES.items()
            ],
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["clinic", "actor_label", "at"], name="audit_event_by_actor_label"
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["clinic", "client_address", "at"], name="audit_event_by_address"
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("emergency", True)),
                fields=["clinic", "at"],
                name="audit_event_emergency",
            ),
        ),
    ]
