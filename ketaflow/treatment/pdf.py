"""Session notes and REMS forms as PDF (fpdf2)."""

from ketaflow.treatment import rems
from ketaflow.web.pdf import document


def _who(user, at, tz):
    return f"{user.get_full_name()} {at.astimezone(tz):%Y-%m-%d %H:%M}" if user else "-"


def note_pdf(s, note, addenda) -> bytes:
    pdf, line, _family = document()
    tz = s.clinic.tz
    line(s.clinic.name, 9)
    line(f"Treatment session note (session {s.pk})", 15, "B")
    line(note.generated, 9, gap=3)
    if note.free_text:
        line("Clinician's note", 11, "B")
        line(note.free_text, 10, gap=3)
    line(
        f"Signed: {_who(note.signed_by, note.signed_at, tz) if note.signed_at else 'NOT SIGNED (draft)'}",
        10,
        "B",
    )
    line(
        f"Co-signed: {_who(note.cosigned_by, note.cosigned_at, tz) if note.cosigned_at else 'not yet'}",
        10,
        "B",
    )
    for a in addenda:
        line(f"Addendum signed by {_who(a.signed_by, a.signed_at, tz)}", 10, "B")
        line(a.text, 10)
    return bytes(pdf.output())


def rems_pdf(s, form, rows) -> bytes:
    pdf, line, _family = document()
    tz = s.clinic.tz
    line(s.clinic.name, 9)
    line("Esketamine REMS Patient Monitoring Form", 15, "B")
    line(f"Form version {form.form_version}: {rems.label_of(form.form_version)}", 9)
    line(f"Session {s.pk} · due by {form.due_by}", 9, gap=3)
    for label, value, _req in rows:
        line(f"{label}: {value if value != '' else '(missing)'}", 10)
    line(
        f"Signed: {_who(form.signed_by, form.signed_at, tz) if form.signed_at else 'NOT SIGNED'}",
        10,
        "B",
    )
    return bytes(pdf.output())
