"""Session notes and REMS forms as PDF (fpdf2)."""

from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def _doc():
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        pdf.add_font("body", "", str(regular))
        pdf.add_font("body", "B", str(bold))
        family, clean = "body", (lambda s: s)
    else:  # pragma: no cover
        family, clean = "helvetica", _latin1

    def line(text, size=10, style="", gap=1):
        pdf.set_font(family, style, size)
        pdf.multi_cell(0, size * 0.5, clean(str(text)), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    return pdf, line


def _who(user, at, tz):
    return f"{user.get_full_name()} {at.astimezone(tz):%Y-%m-%d %H:%M}" if user else "-"


def note_pdf(s, note, addenda) -> bytes:
    pdf, line = _doc()
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
    pdf, line = _doc()
    tz = s.clinic.tz
    line(s.clinic.name, 9)
    line("Esketamine REMS Patient Monitoring Form", 15, "B")
    line(f"Form version {form.form_version} · session {s.pk} · due by {form.due_by}", 9, gap=3)
    for label, value, _req in rows:
        line(f"{label}: {value if value != '' else '(missing)'}", 10)
    line(
        f"Signed: {_who(form.signed_by, form.signed_at, tz) if form.signed_at else 'NOT SIGNED'}",
        10,
        "B",
    )
    return bytes(pdf.output())
