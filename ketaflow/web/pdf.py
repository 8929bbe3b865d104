"""A4 documents for clinical PDFs (session notes, REMS forms, progress letters) with fpdf2.

Text is set in DejaVu Sans (Debian's fonts-dejavu-core) so names and units print as typed;
without those fonts it falls back to Helvetica and replaces characters Latin-1 lacks."""

from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


_PLAIN = {"—": "-", "–": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "•": "-"}


def _latin1(text: str) -> str:
    return "".join(_PLAIN.get(ch, ch) for ch in text).encode("latin-1", "replace").decode("latin-1")


def document(*, gap: float = 1):
    """``(pdf, line, family)``: a new A4 document, a ``line(text, size, style, gap)``
    paragraph writer (``gap`` mm after each paragraph by default), and the font family for
    direct drawing."""
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

    default_gap = gap

    def line(text, size=10, style="", gap=default_gap):
        pdf.set_font(family, style, size)
        pdf.multi_cell(0, size * 0.5, clean(str(text)), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    return pdf, line, family
