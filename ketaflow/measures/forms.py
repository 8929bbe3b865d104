from django import forms

from ketaflow.clinical import instruments
from ketaflow.clinical.instruments import suicidality
from ketaflow.measures.models import MeasureSchedule, MeasuresSettings, RiskFlag
from ketaflow.web import bounds


class SettingsForm(bounds.BoundedModelForm):
    class Meta:
        model = MeasuresSettings
        fields = [
            "link_expiry_hours",
            "escalation_minutes",
            "reminder_hours",
            "pre_treatment_hours",
            "madrs_remission_cutoff",
            "pcl5_ptsd_cutoff",
            "pcl5_reliable_change",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _add_urgency_fields(self)

    def urgency_fields(self):
        return [self[name] for name in self._urgency]

    def clean(self):
        data = super().clean()
        overrides: dict[str, dict[str, str]] = {}
        for name, (rule, level) in self._urgency.items():
            chosen = data.get(name) or level.urgency
            if chosen != level.urgency:
                overrides.setdefault(rule.key, {})[str(level.answer)] = chosen
        try:
            self.instance.suicidality_urgency = suicidality.validate_overrides(overrides)
        except suicidality.OverrideError as exc:
            self.add_error(None, f"Suicidality urgency, {exc}")
        return data


def _add_urgency_fields(form) -> None:
    """One choice per clinic-default level of the suicidality table (the C-SSRS screener's
    own triage is not a setting), initially the clinic's current value."""
    current = form.instance.suicidality_urgency or {}
    choices = [(u, suicidality.URGENCY_LABELS[u]) for u in suicidality.URGENCIES]
    form._urgency = {}
    for rule in suicidality.RULES:
        short = instruments.get(rule.instrument).short_name
        for level in rule.levels:
            if level.basis != "clinic":
                continue
            name = f"urgency_{rule.instrument.replace('-', '_')}_{rule.item}_{level.answer}"
            form.fields[name] = forms.ChoiceField(
                label=f"{short} item {rule.item} ({rule.topic}) answered {level.answer}",
                choices=choices,
                required=False,  # left out: the default
                initial=current.get(rule.key, {}).get(str(level.answer), level.urgency),
                help_text=f"Default {suicidality.URGENCY_LABELS[level.urgency].lower()}. "
                f"{level.source}.",
            )
            form._urgency[name] = (rule, level)


def self_report_choices():
    return [(i.code, i.name) for i in instruments.all_instruments() if i.respondent == "patient"]


class SendLinkForm(bounds.BoundedForm):
    instruments = forms.MultipleChoiceField(
        label="Questionnaires", choices=self_report_choices, widget=forms.CheckboxSelectMultiple
    )
    send_email = forms.BooleanField(
        label="Email the link to the patient",
        required=False,
        help_text="Otherwise show a QR code for an in-clinic tablet or the patient's phone.",
    )
    plan = forms.ChoiceField(label="Treatment course", required=False)

    def __init__(self, *args, plans=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = plan_choices(plans)


class ScheduleForm(bounds.BoundedForm):
    instruments = forms.MultipleChoiceField(
        label="Questionnaires", choices=self_report_choices, widget=forms.CheckboxSelectMultiple
    )
    cadence = forms.ChoiceField(label="How often", choices=MeasureSchedule.Cadence.choices)
    plan = forms.ChoiceField(
        label="Treatment course",
        required=False,
        help_text="“Before every treatment” uses the booked dosing visits of this course "
        "(without a course: all the patient's booked dosing visits).",
    )

    def __init__(self, *args, plans=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = plan_choices(plans)


def plan_choices(plans):
    """Choices of the patient's treatment plans (validated again by the service)."""
    from ketaflow.measures.selectors import plan_label

    return [
        ("", "No course"),
        *[(str(p.pk), f"{plan_label(p)} · {p.get_status_display()}") for p in plans],
    ]


def default_plan(plans):
    """The patient's active plan (the newest if several), else None."""
    active = [p for p in plans if p.status == "active"]
    return active[-1] if active else None


class ClearFlagForm(bounds.BoundedForm):
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
