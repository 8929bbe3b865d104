from ketaflow.tenancy.models import Clinic
from ketaflow.web import bounds

SETTING_SOURCES = {
    "idle_timeout_minutes": "ketaflow default 15 minutes (ONC 170.315(d)(5) automatic log-off; HIPAA 164.312(a)(2)(iii))",
    "emergency_access_minutes": "ketaflow default 60 minutes (ONC 170.315(d)(6) emergency access)",
    "emergency_phone": "ketaflow default 911 (United States)",
    "crisis_line": "988 Suicide & Crisis Lifeline (United States)",
}


class ClinicSettingsForm(bounds.BoundedModelForm):
    class Meta:
        model = Clinic
        fields = [
            "name",
            "timezone",
            "idle_timeout_minutes",
            "emergency_access_minutes",
            "emergency_phone",
            "crisis_line",
        ]
        labels = {
            "idle_timeout_minutes": "Sign out after inactivity (minutes)",
            "emergency_access_minutes": "Emergency access lasts (minutes)",
            "emergency_phone": "Emergency number shown to patients",
            "crisis_line": "Crisis line shown to patients",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, source in SETTING_SOURCES.items():
            self.fields[name].help_text = f"Default and source: {source}."
