"""Plan and settings forms: the single source of field rules for the web pages and the API."""

from decimal import Decimal

from django import forms

from ketaflow.accounts.roles import PRESCRIBER
from ketaflow.clinical import dosing
from ketaflow.patients.forms import staff_with_role
from ketaflow.plans.models import DosingSettingsRow, TreatmentPlan
from ketaflow.web import bounds


class PlanForm(bounds.BoundedForm):
    protocol = forms.ChoiceField(label="Protocol")
    phase = forms.CharField(
        label="Phase", required=False, help_text="Code of the phase; empty: the first phase."
    )
    step = forms.IntegerField(
        label="Current visit (step)",
        min_value=1,
        initial=1,
        help_text="The patient's next visit number within the phase (dose rules by visit use it).",
    )
    prescriber = forms.ModelChoiceField(label="Prescriber", queryset=None)
    weight_kg = forms.DecimalField(
        label="Today's body weight (kg)",
        min_value=dosing.WEIGHT_MIN_KG,
        max_value=dosing.WEIGHT_MAX_KG,
        max_digits=6,
        decimal_places=2,
        help_text="25-350 kg. Recorded with this plan version.",
    )
    dose_value = forms.DecimalField(
        label="Dose",
        required=False,
        min_value=Decimal("0.001"),
        max_digits=8,
        decimal_places=3,
        help_text="mg/kg for ketamine routes, mg for esketamine. Empty: the protocol's planned "
        "dose for this visit.",
    )
    override_reason = forms.CharField(
        label="Justification to exceed the clinic's mg/kg maximum",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"Only needed above the maximum; at least {dosing.OVERRIDE_REASON_MIN_CHARS} "
        f"characters and {dosing.OVERRIDE_REASON_MIN_WORDS} words, recorded with the plan. No "
        "justification passes the clinic's absolute ceiling.",
    )
    start_date = bounds.date_field(label="Start date")
    goals = forms.CharField(label="Goals", widget=forms.Textarea(attrs={"rows": 3}))
    change_reason = forms.CharField(
        label="Reason for the change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, clinic, protocols=(), revising=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["protocol"].choices = [("", "Choose a protocol")] + [
            (p.code, p.name) for p in protocols
        ]
        self.fields["prescriber"].queryset = staff_with_role(clinic, PRESCRIBER)
        if revising:
            self.fields["change_reason"].required = True

    def clean_override_reason(self):
        return (self.cleaned_data.get("override_reason") or "").strip()


class StatusForm(bounds.BoundedForm):
    status = forms.ChoiceField(choices=TreatmentPlan.Status.choices, label="New status")
    reason = forms.CharField(
        label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class TransitionForm(bounds.BoundedForm):
    to_phase = forms.CharField(label="Move to phase")
    outcome = forms.CharField(
        label="Outcome that justifies the transition",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For example the PHQ-9 change since baseline.",
    )


class DosingSettingsForm(bounds.BoundedModelForm):
    class Meta:
        model = DosingSettingsRow
        fields = DosingSettingsRow.FIELDS


class ProtocolJSONForm(bounds.BoundedForm):
    data = forms.CharField(
        label="Protocol (JSON)", widget=forms.Textarea(attrs={"rows": 30, "class": "code"})
    )


class DoseForm(bounds.BoundedForm):
    route = forms.ChoiceField(choices=[(r, r) for r in dosing.ROUTES])
    weight_kg = forms.DecimalField(required=False)
    dose_value = forms.DecimalField()
    minutes = forms.DecimalField(required=False)
    override_reason = forms.CharField(required=False)
