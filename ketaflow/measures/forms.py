from django import forms

from ketaflow.clinical import instruments
from ketaflow.measures.models import MeasureSchedule, MeasuresSettings, RiskFlag


class SettingsForm(forms.ModelForm):
    class Meta:
        model = MeasuresSettings
        fields = [
            "link_expiry_hours",
            "escalation_minutes",
            "reminder_hours",
            "pre_treatment_hours",
        ]


def self_report_choices():
    return [(i.code, i.name) for i in instruments.all_instruments() if i.respondent == "patient"]


class SendLinkForm(forms.Form):
    instruments = forms.MultipleChoiceField(
        label="Questionnaires", choices=self_report_choices, widget=forms.CheckboxSelectMultiple
    )
    send_email = forms.BooleanField(
        label="Email the link to the patient",
        required=False,
        help_text="Otherwise show a QR code for an in-clinic tablet or the patient's phone.",
    )
    course_label = forms.CharField(
        label="Treatment course (optional)", max_length=120, required=False
    )


class ScheduleForm(forms.Form):
    instruments = forms.MultipleChoiceField(
        label="Questionnaires", choices=self_report_choices, widget=forms.CheckboxSelectMultiple
    )
    cadence = forms.ChoiceField(label="How often", choices=MeasureSchedule.Cadence.choices)


class ClearFlagForm(forms.Form):
    action = forms.ChoiceField(
        label="Action taken", choices=[("", "Choose…"), *RiskFlag.Action.choices]
    )
    note = forms.CharField(
        label="What was done",
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        help_text="Documented in the chart and the audit trail.",
    )


def item_rows(inst, answers: dict, errors: dict) -> list[dict]:
    """Template rows for an instrument's questions with the given answers and errors."""
    rows = []
    for item in inst.items:
        current = answers.get(item.key)
        rows.append(
            {
                "key": item.key,
                "text": item.text,
                "required": item.required,
                "asked_if": item.asked_if,
                "error": errors.get(item.key, ""),
                "options": [
                    {
                        "value": str(o.value),
                        "label": o.label,
                        "checked": current is not None and str(current) == str(o.value),
                    }
                    for o in item.options
                ],
            }
        )
    return rows


def answers_from_post(inst, post) -> dict:
    return {
        item.key: post.get(f"item_{item.key}")
        for item in inst.items
        if post.get(f"item_{item.key}") not in (None, "")
    }
