"""Forms: the single source of field rules for the web pages and the API (services run them)."""

from django import forms

from ketaflow.clinical import instruments
from ketaflow.therapy.models import Goal, OutsideClinician, Practice, TherapySettings
from ketaflow.web import bounds


def scored_instruments():
    return [
        (c, instruments.get(c).short_name)
        for c in instruments.codes()
        if instruments.get(c).score_range is not None
    ]


class SettingsForm(bounds.BoundedModelForm):
    class Meta:
        model = TherapySettings
        fields = ["progress_note_format", "practice_link_days"]


class GoalForm(bounds.BoundedModelForm):
    instrument = forms.ChoiceField(label="Measure that shows progress", required=False, choices=())

    class Meta:
        model = Goal
        fields = [
            "title",
            "detail",
            "plan",
            "target_date",
            "status",
            "instrument",
            "comparator",
            "threshold",
        ]
        widgets = {"target_date": forms.DateInput(attrs={"type": "date"})}
        help_texts = {
            "threshold": "For example PHQ-9 below 10. The clinician sets the target.",
        }

    def __init__(self, *args, patient=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instrument"].choices = [("", "None"), *scored_instruments()]
        if patient is not None:
            from ketaflow.plans.models import TreatmentPlan

            self.fields["plan"].queryset = TreatmentPlan.objects.for_clinic(patient.clinic).filter(
                patient=patient
            )
        self.fields["plan"].required = False
        self.fields["plan"].label = "Treatment course"

    def clean(self):
        data = super().clean()
        code, comp, threshold = (
            data.get("instrument"),
            data.get("comparator"),
            data.get("threshold"),
        )
        given = [bool(code), bool(comp), threshold is not None]
        if any(given) and not all(given):
            for name, ok in zip(("instrument", "comparator", "threshold"), given, strict=True):
                if not ok:
                    self.add_error(
                        name, "A measured target needs the measure, the comparison and the number."
                    )
        if code and threshold is not None:
            lo, hi = instruments.get(code).score_range
            if not lo <= threshold <= hi:
                self.add_error(
                    "threshold",
                    f"{instruments.get(code).short_name} totals run from {lo} to {hi}.",
                )
        return data


class PracticeForm(bounds.BoundedModelForm):
    class Meta:
        model = Practice
        fields = ["kind", "title", "detail", "days_per_week", "active"]
        labels = {"days_per_week": "Aim: days per week"}


class ClinicianForm(bounds.BoundedModelForm):
    class Meta:
        model = OutsideClinician
        fields = [
            "role",
            "name",
            "organization",
            "email",
            "phone",
            "fax",
            "address",
            "consent_given_on",
            "consent_expires_on",
            "consent_scope",
            "consent_withdrawn_on",
            "active",
        ]
        widgets = {
            "consent_given_on": forms.DateInput(attrs={"type": "date"}),
            "consent_expires_on": forms.DateInput(attrs={"type": "date"}),
            "consent_withdrawn_on": forms.DateInput(attrs={"type": "date"}),
        }
        labels = {"consent_withdrawn_on": "consent withdrawn on"}

    def __init__(self, *args, today=None, **kwargs):
        """``today``: the clinic's local date; consent is recorded after it is given or
        withdrawn, so neither date may lie after it."""
        super().__init__(*args, **kwargs)
        self.today = today
        if today is not None:
            for name in ("consent_given_on", "consent_withdrawn_on"):
                self.fields[name].widget.attrs["max"] = today.isoformat()

    def clean(self):
        data = super().clean()
        given, expires = data.get("consent_given_on"), data.get("consent_expires_on")
        withdrawn = data.get("consent_withdrawn_on")
        if self.today is not None:
            for name, value in (("consent_given_on", given), ("consent_withdrawn_on", withdrawn)):
                if value and value > self.today:
                    self.add_error(
                        name, f"Cannot be after today ({self.today:%Y-%m-%d} at the clinic)."
                    )
        if expires and not given:
            self.add_error("consent_given_on", "Enter when the patient gave the consent.")
        if given and expires and expires < given:
            self.add_error("consent_expires_on", "The consent cannot expire before it was given.")
        if withdrawn and not given:
            self.add_error("consent_withdrawn_on", "No consent was recorded to withdraw.")
        return data
