from django import forms

from ketaflow.scheduling.models import ScheduleSettings
from ketaflow.web import bounds


class ScheduleSettingsForm(bounds.BoundedModelForm):
    class Meta:
        model = ScheduleSettings
        fields = [
            "open_time",
            "close_time",
            "open_days",
            "slot_minutes",
            "reminder_lead_hours",
            "companion_window_days",
        ]
        widgets = {
            "open_time": forms.TimeInput(attrs={"type": "time"}),
            "close_time": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        if (
            data.get("open_time")
            and data.get("close_time")
            and data["open_time"] >= data["close_time"]
        ):
            self.add_error("close_time", "Closing time must be after opening time.")
        days = data.get("open_days") or ""
        if not all(d.strip() in "0123456" and d.strip() for d in days.split(",")):
            self.add_error("open_days", "Weekday numbers 0 (Monday) to 6, separated by commas.")
        if data.get("slot_minutes") is not None and not 5 <= data["slot_minutes"] <= 120:
            self.add_error("slot_minutes", "Between 5 and 120 minutes.")
        window = data.get("companion_window_days")
        if window is not None and not 1 <= window <= 28:
            self.add_error("companion_window_days", "Between 1 and 28 days.")
        return data
