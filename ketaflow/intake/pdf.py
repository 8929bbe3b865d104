"""The signed consent as a PDF (fpdf2), with the exact signed text and the signature block."""

from ketaflow.web.pdf import document


def consent_pdf(signature, clinic) -> bytes:
    pdf, line, _family = document(gap=2)
    local = signature.signed_at.astimezone(clinic.tz)

    line(clinic.name, 9)
    line(signature.title, 15, "B")
    line(f"Version {signature.version} · route {signature.get_route_display()}", 9)
    line(
        f"Patient: {signature.patient.legal_name} · MRN {signature.patient.mrn} · "
        f"born {signature.patient.date_of_birth:%Y-%m-%d}",
        9,
        gap=4,
    )
    for paragraph in signature.body.split("\n\n"):
        head, _, rest = paragraph.partition("\n")
        if rest and head.isupper():
            line(head, 11, "B", gap=1)
            line(rest)
        else:
            line(paragraph)
    pdf.ln(2)
    line("Signature", 12, "B", gap=1)
    line(f"Typed name: {signature.typed_name}")
    line("Agreement: the patient ticked “I have read this consent form ... and I agree”.")
    line(f"Signed: {local:%Y-%m-%d %H:%M} ({clinic.timezone}) via {signature.get_via_display()}")
    line(f"Client address: {signature.client_address or 'not recorded'}")
    if signature.collected_by_id:
        line(f"Collected by: {signature.collected_by}")
    line(f"SHA-256 of the signed text: {signature.body_sha256}", 8)
    if signature.withdrawn_at:
        withdrawn = signature.withdrawn_at.astimezone(clinic.tz)
        line(
            f"CONSENT WITHDRAWN on {withdrawn:%Y-%m-%d %H:%M}: {signature.withdrawn_reason}",
            11,
            "B",
        )
    return bytes(pdf.output())
