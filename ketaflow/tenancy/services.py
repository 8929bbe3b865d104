from django.core.exceptions import ValidationError
from django.db import transaction

from ketaflow.accounts.permissions import require_permission
from ketaflow.audit import services as audit
from ketaflow.tenancy.forms import ClinicSettingsForm
from ketaflow.tenancy.models import Clinic


@transaction.atomic
def update_clinic_settings(*, clinic: Clinic, actor, data: dict) -> Clinic:
    """Change the clinic's settings; the audit event lists the changed fields with old and new values."""
    require_permission(actor, "clinic.settings", clinic)
    clinic = Clinic.objects.select_for_update(no_key=True, of=("self",)).get(pk=clinic.pk)
    form = ClinicSettingsForm(data, instance=clinic)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    changed = {
        name: {"from": form.initial.get(name), "to": form.cleaned_data[name]}
        for name in form.changed_data
    }
    if changed:
        form.save()
        audit.record(
            action="update", clinic=clinic, actor=actor, obj=clinic, detail={"settings": changed}
        )
    return clinic
