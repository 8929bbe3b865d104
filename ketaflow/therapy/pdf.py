"""Progress letters as PDF (``web.pdf``), with each
questionnaire's trend drawn as a small line chart labelled in text."""

import datetime
import itertools

from ketaflow.web.pdf import document


def _chart(pdf, family, m: dict) -> None:
    """A line chart of one measure: axis labels, baseline line, each score as a point."""
    scores = [(datetime.date.fromisoformat(d), v) for d, v in m["scores"]]
    lo, hi = m["range"]
    x0, y0, w, h = pdf.l_margin + 10, pdf.get_y() + 2, 150, 40
    if y0 + h + 12 > pdf.h - pdf.b_margin:
        pdf.add_page()
        y0 = pdf.get_y() + 2
    first, last = scores[0][0], scores[-1][0]
    span = (last - first).days or 1

    def x(d):
        return x0 + w * (d - first).days / span

    def y(v):
        return y0 + h * (1 - (v - lo) / ((hi - lo) or 1))

    pdf.set_draw_color(0)
    pdf.set_line_width(0.2)
    pdf.line(x0, y0, x0, y0 + h)
    pdf.line(x0, y0 + h, x0 + w, y0 + h)
    pdf.set_font(family, "", 7)
    for v in (lo, hi):
        pdf.text(x0 - 8, y(v) + 1, str(v))
    pdf.text(x0, y0 + h + 4, first.isoformat())
    pdf.text(x0 + w - 16, y0 + h + 4, last.isoformat())
    if m.get("baseline") is not None:
        pdf.set_draw_color(120)
        pdf.set_dash_pattern(dash=1, gap=1)
        pdf.line(x0, y(m["baseline"]), x0 + w, y(m["baseline"]))
        pdf.set_dash_pattern()
        pdf.text(x0 + w + 2, y(m["baseline"]) + 1, f"baseline {m['baseline']}")
    pdf.set_draw_color(0)
    pdf.set_line_width(0.5)
    for (d1, v1), (d2, v2) in itertools.pairwise(scores):
        pdf.line(x(d1), y(v1), x(d2), y(v2))
    for d, v in scores:
        pdf.ellipse(x(d) - 0.8, y(v) - 0.8, 1.6, 1.6, style="F")
        pdf.text(x(d) - 1, y(v) - 2, str(v))
    pdf.set_line_width(0.2)
    pdf.set_y(y0 + h + 8)


def letter_pdf(letter) -> bytes:
    f = letter.facts
    tz = letter.clinic.tz
    pdf, line, family = document()
    r = letter.recipient
    line(f["clinic"], 9)
    line("Progress letter", 15, "B")
    line(
        f"To: {r.name}, {r.get_role_display()}" + (f", {r.organization}" if r.organization else ""),
        10,
    )
    line(
        f"About: {f['patient']['name']}, born {f['patient']['date_of_birth']} "
        f"(MRN {f['patient']['mrn']})",
        10,
        gap=3,
    )
    if f.get("course"):
        c = f["course"]
        line("Treatment course", 12, "B")
        line(f"{c['protocol']} ({c['route']}), from {c['start_date']}; status {c['status']}.", 10)
    line("Treatments given", 12, "B")
    if f["treatments"]:
        for t in f["treatments"]:
            dose = f", {t['dose_mg']} mg" if t["dose_mg"] else ""
            line(f"{t['date']}: {t['route']}{dose} ({t['state'].lower()})", 10, gap=0)
        line("", 4)
    else:
        line("No treatment session recorded yet.", 10)
    line("Measures", 12, "B")
    if f["measures"]:
        for m in f["measures"]:
            line(
                f"{m['name']}: " + ", ".join(f"{d} {v}" for d, v in m["scores"]),
                10,
                gap=0,
            )
            _chart(pdf, family, m)
    else:
        line("No questionnaire scores in this course yet.", 10)
    line("Response status", 12, "B")
    for s in f["response_status"] or ["Not assessed: no scores yet."]:
        line(s, 10)
    line(
        "Rules: response = at least 50% fall from baseline; partial response = 25-50%; "
        "remission = below the instrument's cut-off; baseline = last score before the first "
        "treatment of the course.",
        8,
        gap=3,
    )
    if f.get("medications"):
        line("Concurrent medications (from the assessment)", 12, "B")
        for m in f["medications"]:
            note = f" - {m['note']}" if m["note"] else ""
            line(f"{m['name']} {m['dose']} ({m['class'] or 'other'}){note}", 9, gap=0)
        line("", 4)
    line("Plan", 12, "B")
    line(letter.plan_text or "(not written)", 10, gap=3)
    if letter.comments:
        line("Comments", 12, "B")
        line(letter.comments, 10, gap=3)
    signed = (
        f"Signed by {letter.author.get_full_name()}"
        + (f", {letter.author.credentials}" if letter.author.credentials else "")
        + f", {letter.signed_at.astimezone(tz):%Y-%m-%d %H:%M}"
        if letter.signed_at
        else "NOT SIGNED (draft)"
    )
    line(signed, 10, "B")
    line("Sent with the patient's recorded consent to share with this clinician.", 8)
    return bytes(pdf.output())
