"""iCalendar (RFC 5545) text for appointments: a patient's .ics and a staff member's feed."""

import datetime

UTC = datetime.UTC


def _esc(text: str) -> str:
    return (
        str(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def _dt(value: datetime.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event(a, *, summary: str, description: str = "", host: str = "ketaflow") -> list[str]:
    status = "CANCELLED" if a.status in ("cancelled", "rescheduled") else "CONFIRMED"
    lines = [
        "BEGIN:VEVENT",
        f"UID:appointment-{a.pk}@{host}",
        f"DTSTAMP:{_dt(datetime.datetime.now(UTC))}",
        f"DTSTART:{_dt(a.start)}",
        f"DTEND:{_dt(a.end)}",
        f"SUMMARY:{_esc(summary)}",
        f"LOCATION:{_esc(a.location.name)}",
        f"STATUS:{status}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{_esc(description)}")
    lines.append("END:VEVENT")
    return lines


def calendar(events: list[list[str]], name: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ketaflow//scheduling//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{_esc(name)}",
    ]
    for e in events:
        lines += e
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def patient_ics(a) -> str:
    return calendar(
        [event(a, summary=f"{a.type.name} at {a.clinic.name}", description=a.type.preparation)],
        a.clinic.name,
    )


def staff_feed(rows, name: str) -> str:
    # Minimum necessary: the type and the patient's MRN, never the name.
    return calendar(
        [
            event(
                a,
                summary=f"{a.type.name} · {a.patient.mrn}"
                + (f" · {a.chair.name}" if a.chair else ""),
            )
            for a in rows
        ],
        name,
    )
