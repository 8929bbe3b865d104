"""Validation for every intake form: the single source of rules for the pages and the API."""

import datetime
import re

from django import forms

from ketaflow.clinical import eligibility as rules
from ketaflow.clinical import instruments
from ketaflow.intake.models import (
    ROUTE_CHOICES,
    YES_NO_UNSURE,
    Assessment,
    ConsultationRequest,
    EligibilityDecision,
)
from ketaflow.intake.prescreen import SEEKING
from ketaflow.tenancy.models import Location
from ketaflow.web import bounds

PHONE = re.compile(r"^\+?[0-9 ()\-.]{7,25}$")
CONTACT_TIMES = [
    ("", "Any time"),
    ("morning", "Morning"),
    ("afternoon", "Afternoon"),
    ("evening", "Evening"),
]
ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$")
# Reference section 6: plausibility limits for data entry (not clinical limits).
WEIGHT_RANGE = (25, 350)
HEIGHT_RANGE = (100, 250)
HEART_RATE_RANGE = (20, 250)

MEDICATION_CLASSES = [
    ("benzodiazepine", "Benzodiazepine"),
    ("sedative_hypnotic", "Non-benzodiazepine sedative-hypnotic"),
    ("psychostimulant", "Psychostimulant"),
    ("maoi", "MAOI"),
    ("opioid", "Opioid"),
    ("other", "Other"),
]
assert {c for c, _ in MEDICATION_CLASSES} - {"other"} == set(rules.MEDICATION_CLASSES)
OUTCOME_CHOICES = [
    ("no_response", "No response"),
    ("partial_response", "Partial response"),
    ("intolerance", "Intolerance"),
    ("response", "Response"),
]
assert tuple(c for c, _ in OUTCOME_CHOICES) == rules.OUTCOMES
# The medical-history checklist: every eligibility condition that has no field of its own.
CHECKLIST = [
    (
        "aneurysmal_vascular_disease",
        "Aneurysmal vascular disease (aorta, intracranial or peripheral arteries)",
    ),
    ("arteriovenous_malformation", "Arteriovenous malformation"),
    ("intracerebral_hemorrhage_history", "History of intracerebral hemorrhage"),
    ("hypersensitivity_ketamine", "Hypersensitivity to ketamine, esketamine or an excipient"),
    ("schizophrenia", "Known or suspected schizophrenia"),
    ("uncontrolled_hypertension", "Uncontrolled hypertension"),
    ("arrhythmia", "Significant arrhythmia"),
    ("ischemic_heart_disease", "Ischemic heart disease"),
    ("heart_failure", "Heart failure"),
    ("cerebrovascular_disease", "Cerebrovascular disease"),
    ("raised_intracranial_pressure", "Raised intracranial pressure"),
    ("raised_intraocular_pressure", "Raised intraocular pressure"),
    ("severe_hepatic_impairment", "Severe hepatic impairment"),
]
OWN_FIELDS = {
    "psychosis_history": "history_psychosis",
    "mania_history": "history_mania",
    "substance_use_disorder": "substance_use_disorder",
    "pregnancy": "pregnant",
    "breastfeeding": "breastfeeding",
}
assert {c for c, _ in CHECKLIST} | set(OWN_FIELDS) == set(rules.CONDITIONS)


def _clean_phone(value: str) -> str:
    value = (value or "").strip()
    if value and (not PHONE.match(value) or sum(ch.isdigit() for ch in value) < 7):
        raise forms.ValidationError(
            "Enter a phone number of at least 7 digits (digits, spaces, +, -, parentheses)."
        )
    return value


class PublicRequestForm(bounds.BoundedForm):
    """The public consultation request. Every field has a maximum length."""

    given_name = forms.CharField(label="First name", max_length=100)
    family_name = forms.CharField(label="Last name", max_length=100)
    date_of_birth = forms.DateField(
        label="Date of birth", widget=forms.DateInput(attrs={"type": "date"})
    )
    email = forms.EmailField(label="Email", max_length=254, required=False)
    phone = forms.CharField(label="Phone", max_length=30, required=False)
    preferred_location = forms.ModelChoiceField(
        label="Preferred location",
        queryset=Location.objects.none(),
        required=False,
        empty_label="No preference",
    )
    contact_time = forms.ChoiceField(
        label="Best time to contact you", choices=CONTACT_TIMES, required=False
    )
    seeking = forms.MultipleChoiceField(
        label="What would you like help with?",
        choices=SEEKING,
        widget=forms.CheckboxSelectMultiple,
    )
    seeking_other = forms.CharField(
        label="If something else, what?", max_length=200, required=False
    )
    diagnosed_depression = forms.ChoiceField(
        label="Has a clinician diagnosed you with depression?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
    )
    antidepressants_tried = forms.IntegerField(
        label="How many different antidepressant medicines have you tried?",
        min_value=0,
        max_value=30,
    )
    antidepressant_helped = forms.ChoiceField(
        label="Did any of them help?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
        required=False,
    )
    antidepressant_intolerance = forms.ChoiceField(
        label="Did you have to stop any because of side effects?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
        required=False,
    )
    therapy_tried = forms.ChoiceField(
        label="Have you tried talk therapy?", choices=YES_NO_UNSURE, widget=forms.RadioSelect
    )
    referred = forms.ChoiceField(
        label="Did a clinician refer you to us?", choices=YES_NO_UNSURE, widget=forms.RadioSelect
    )
    referrer = forms.CharField(label="Referring clinician (if any)", max_length=200, required=False)
    pregnant = forms.ChoiceField(
        label="Are you pregnant, possibly pregnant, or breastfeeding?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
    )
    heart_bp = forms.ChoiceField(
        label="Do you have heart or blood-pressure problems?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
    )
    psychosis_mania = forms.ChoiceField(
        label="Have you ever had psychosis (hearing or seeing things others do not) or mania?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
    )
    substance_use = forms.ChoiceField(
        label="Do you currently use alcohol or drugs in a way that worries you or others?",
        choices=YES_NO_UNSURE,
        widget=forms.RadioSelect,
    )
    message = forms.CharField(
        label="Anything else you would like us to know",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    consent_to_contact = forms.BooleanField(
        label="I agree that the clinic may contact me by phone or email about this request.",
    )
    # Honeypot: hidden from people by CSS, filled in by bots.
    website = forms.CharField(label="Leave this field empty", max_length=200, required=False)

    def __init__(self, *args, clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["preferred_location"].queryset = Location.objects.filter(clinic=clinic)
        self.fields["date_of_birth"].input_formats = ["%Y-%m-%d", "%m/%d/%Y"]
        self.fields["website"].widget.attrs.update({"tabindex": "-1", "autocomplete": "off"})
        self.fields["consent_to_contact"].error_messages["required"] = (
            "Please tick the box so that we may contact you; without it we cannot reply."
        )
        self.phq9_items = instruments.get("phq9").items
        for item in self.phq9_items:
            self.fields[f"phq9_{item.key}"] = forms.TypedChoiceField(
                label=item.text,
                choices=[("", "—")] + [(o.value, o.label) for o in item.options],
                coerce=int,
                required=False,
                empty_value=None,
            )

    def phq9_fields(self):
        return [self[f"phq9_{item.key}"] for item in self.phq9_items]

    def clean_phone(self):
        return _clean_phone(self.cleaned_data.get("phone"))

    def clean_date_of_birth(self):
        dob = self.cleaned_data["date_of_birth"]
        if dob > self.clinic.today():
            raise forms.ValidationError("Date of birth cannot be in the future.")
        if dob < datetime.date(1900, 1, 1):
            raise forms.ValidationError("Date of birth must be on or after 1900-01-01.")
        return dob

    def clean(self):
        data = super().clean()
        if not data.get("email") and not data.get("phone") and "email" not in self.errors:
            self.add_error("phone", "Give a phone number or an email so that we can reply.")
        answers = {
            item.key: data.get(f"phq9_{item.key}")
            for item in self.phq9_items
            if data.get(f"phq9_{item.key}") is not None
        }
        data["phq9"] = None
        if answers:
            try:
                data["phq9"] = instruments.score("phq9", answers)
            except instruments.ScoringError as exc:
                self.add_error(
                    None,
                    f"PHQ-9: {exc.message} (answer every question, or leave all of them empty).",
                )
            data["phq9_answers"] = answers
        for name in ("given_name", "family_name"):
            if isinstance(data.get(name), str):
                data[name] = " ".join(data[name].split())
        return data


class StatusForm(bounds.BoundedForm):
    status = forms.ChoiceField(
        choices=[c for c in ConsultationRequest.Status.choices if c[0] != "converted"]
    )
    decline_reason = forms.CharField(label="Reason for declining", max_length=500, required=False)

    def clean(self):
        data = super().clean()
        if data.get("status") == "declined" and not (data.get("decline_reason") or "").strip():
            self.add_error("decline_reason", "Give the reason for declining the request.")
        return data


class AssessmentForm(bounds.BoundedModelForm):
    conditions = forms.MultipleChoiceField(
        label="Medical history (tick every condition present)",
        choices=CHECKLIST,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Assessment
        fields = [
            "episode_start",
            "history_psychosis",
            "history_mania",
            "suicide_attempts",
            "hospitalisations",
            "history_notes",
            "psychotherapy",
            "conditions",
            "medical_notes",
            "substance_use_disorder",
            "substance_notes",
            "pregnant",
            "breastfeeding",
            "allergies",
            "systolic",
            "diastolic",
            "heart_rate",
            "weight_kg",
            "height_cm",
        ]
        widgets = {
            "episode_start": forms.DateInput(attrs={"type": "date"}),
            "history_notes": forms.Textarea(attrs={"rows": 3}),
            "psychotherapy": forms.Textarea(attrs={"rows": 2}),
            "medical_notes": forms.Textarea(attrs={"rows": 2}),
            "substance_notes": forms.Textarea(attrs={"rows": 2}),
            "allergies": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {
            "substance_use_disorder": "Substance use disorder (including prior ketamine, PCP or opioid misuse)"
        }

    def __init__(self, *args, clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["episode_start"].input_formats = ["%Y-%m-%d", "%m/%d/%Y"]
        for name in ("suicide_attempts", "hospitalisations"):
            self.fields[name].max_value = 99
            self.fields[name].widget.attrs["max"] = 99

    def _range(self, name, low, high, unit):
        value = self.cleaned_data.get(name)
        if value is not None and not low <= value <= high:
            raise forms.ValidationError(
                f"Enter a value from {low} to {high} {unit} (plausibility limits, "
                "clinical-reference.md section 6); this looks like a typing error."
            )
        return value

    def clean_systolic(self):
        return self._range("systolic", *rules.SYSTOLIC_RANGE, "mmHg")

    def clean_diastolic(self):
        return self._range("diastolic", *rules.DIASTOLIC_RANGE, "mmHg")

    def clean_heart_rate(self):
        return self._range("heart_rate", *HEART_RATE_RANGE, "/min")

    def clean_weight_kg(self):
        return self._range("weight_kg", *WEIGHT_RANGE, "kg")

    def clean_height_cm(self):
        return self._range("height_cm", *HEIGHT_RANGE, "cm")

    def clean_episode_start(self):
        value = self.cleaned_data.get("episode_start")
        if value and value > self.clinic.today():
            raise forms.ValidationError("The episode cannot start in the future.")
        return value

    def clean(self):
        data = super().clean()
        systolic, diastolic = data.get("systolic"), data.get("diastolic")
        if (systolic is None) != (diastolic is None) and not self.errors.get("systolic"):
            self.add_error("diastolic" if systolic else "systolic", "Enter both blood pressures.")
        elif systolic is not None and diastolic is not None and systolic <= diastolic:
            self.add_error("systolic", "Systolic must be above diastolic (reference section 6).")
        return data


class DiagnosisForm(bounds.BoundedForm):
    code = forms.CharField(label="ICD-10-CM code", max_length=8, required=False)
    description = forms.CharField(label="Diagnosis", max_length=200, required=False)

    def clean(self):
        data = super().clean()
        code = (data.get("code") or "").strip().upper()
        description = (data.get("description") or "").strip()
        if code and not ICD10.match(code):
            self.add_error(
                "code",
                "Enter an ICD-10-CM code such as F33.2 (letter, two digits, optional decimals).",
            )
        if description and not code:
            self.add_error("code", "Give the ICD-10-CM code of this diagnosis.")
        if code and not description:
            self.add_error("description", "Describe the diagnosis.")
        data["code"], data["description"] = code, description
        return data


class TrialForm(bounds.BoundedForm):
    drug = forms.CharField(label="Antidepressant", max_length=100, required=False)
    dose = forms.CharField(label="Dose", max_length=60, required=False)
    weeks = forms.DecimalField(
        label="Weeks", min_value=0, max_value=520, decimal_places=1, required=False
    )
    adequate_dose = forms.TypedChoiceField(
        label="Adequate dose",
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda v: v == "yes",
        required=False,
    )
    current_episode = forms.TypedChoiceField(
        label="In the current episode",
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda v: v == "yes",
        required=False,
    )
    outcome = forms.ChoiceField(
        label="Outcome", choices=[("", "—"), *OUTCOME_CHOICES], required=False
    )

    def clean(self):
        data = super().clean()
        if not (data.get("drug") or "").strip():
            return data
        for name in ("weeks", "outcome"):
            if data.get(name) in (None, ""):
                self.add_error(name, "Required for every antidepressant trial.")
        for name in ("adequate_dose", "current_episode"):
            if self.data.get(self.add_prefix(name)) not in ("yes", "no"):
                self.add_error(name, "Answer yes or no.")
        return data

    def as_trial(self):
        data = self.cleaned_data
        if not (data.get("drug") or "").strip():
            return None
        return {
            "drug": data["drug"].strip(),
            "dose": (data.get("dose") or "").strip(),
            "weeks": float(data["weeks"]),
            "adequate_dose": bool(data["adequate_dose"]),
            "current_episode": bool(data["current_episode"]),
            "outcome": data["outcome"],
        }


class MedicationForm(bounds.BoundedForm):
    name = forms.CharField(label="Medication", max_length=100, required=False)
    dose = forms.CharField(label="Dose and frequency", max_length=100, required=False)
    med_class = forms.ChoiceField(
        label="Class", choices=[("", "—"), *MEDICATION_CLASSES], required=False
    )

    def clean(self):
        data = super().clean()
        if (data.get("name") or "").strip() and not data.get("med_class"):
            self.add_error("med_class", 'Choose the class ("Other" if none of these).')
        return data

    def as_medication(self):
        data = self.cleaned_data
        if not (data.get("name") or "").strip():
            return None
        return {
            "name": data["name"].strip(),
            "dose": (data.get("dose") or "").strip(),
            "med_class": data["med_class"],
        }


DiagnosisFormSet = forms.formset_factory(DiagnosisForm, extra=0, max_num=20, absolute_max=20)
TrialFormSet = forms.formset_factory(TrialForm, extra=0, max_num=30, absolute_max=30)
MedicationFormSet = forms.formset_factory(MedicationForm, extra=0, max_num=30, absolute_max=30)


def trial_initial(trials):
    return [
        {
            **t,
            "adequate_dose": "yes" if t["adequate_dose"] else "no",
            "current_episode": "yes" if t["current_episode"] else "no",
        }
        for t in trials
    ]


class DecisionForm(bounds.BoundedForm):
    decision = forms.ChoiceField(
        choices=EligibilityDecision.Decision.choices, widget=forms.RadioSelect
    )
    routes = forms.MultipleChoiceField(
        label="Approved route(s)",
        choices=ROUTE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    reason = forms.CharField(
        label="Reason (required to decline or defer)",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    justification = forms.CharField(
        label="Written justification (required to approve against an absolute or review reason)",
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ConsentSignForm(bounds.BoundedForm):
    typed_name = forms.CharField(label="Type your full name", max_length=200)
    agreed = forms.BooleanField(
        label="I have read this consent form, my questions have been answered, and I agree to the treatment it describes."
    )


class ConsentDocumentForm(bounds.BoundedForm):
    title = forms.CharField(max_length=200)
    body = forms.CharField(max_length=20000, widget=forms.Textarea(attrs={"rows": 24}))


class ConsentLinkForm(bounds.BoundedForm):
    route = forms.ChoiceField(choices=ROUTE_CHOICES)
    hours = forms.IntegerField(
        label="Link valid for (hours)", min_value=1, max_value=168, initial=72
    )


class WithdrawForm(bounds.BoundedForm):
    reason = forms.CharField(
        label="What the patient said (withdrawal of consent)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AddendumForm(bounds.BoundedForm):
    text = forms.CharField(
        label="Addendum", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )


class EligibilitySettingsForm(bounds.BoundedModelForm):
    """Per-clinic eligibility settings. The ranges are input sanity checks, not clinical
    limits; the defaults and their sources are shown next to the fields."""

    RANGES = {
        "trd_min_weeks": (1, 26),
        "bp_review_systolic": (90, 220),
        "bp_review_diastolic": (50, 140),
        "adult_age": (16, 21),
        "esketamine_older_adult_age": (50, 100),
    }

    class Meta:
        from ketaflow.intake.models import EligibilitySettingsRow

        model = EligibilitySettingsRow
        fields = EligibilitySettingsRow.FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from ketaflow.intake.selectors import SETTING_LABELS

        for name, field in self.fields.items():
            field.label = SETTING_LABELS[name]
            low, high = self.RANGES[name]
            field.help_text = f"Accepted {low}-{high} (an input check, not a clinical limit)."

    def clean(self):
        data = super().clean()
        for name, (low, high) in self.RANGES.items():
            value = data.get(name)
            if value is not None and not low <= value <= high:
                self.add_error(name, f"Between {low} and {high}.")
        if (
            data.get("adult_age") is not None
            and data.get("esketamine_older_adult_age") is not None
            and data["esketamine_older_adult_age"] <= data["adult_age"]
        ):
            self.add_error("esketamine_older_adult_age", "Must be above the age of adulthood.")
        if (
            data.get("bp_review_systolic") is not None
            and data.get("bp_review_diastolic") is not None
            and data["bp_review_diastolic"] >= data["bp_review_systolic"]
        ):
            self.add_error("bp_review_diastolic", "Must be below the systolic threshold.")
        return data
