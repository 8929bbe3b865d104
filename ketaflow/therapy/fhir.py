"""FHIR-shaped output of therapy notes (R4 DocumentReference in a Bundle).

Only what ``selectors.exportable_notes`` returns goes in: signed record notes, and
psychotherapy notes whose author released them. The note text travels as a plain-text
attachment; LOINC document types where one fits."""

import base64

# LOINC document codes (Document Ontology). 11506-3 Progress note; 34746-8 Nurse note is not
# used. Psychotherapy notes use the same progress-note code with a local category.
LOINC_PROGRESS_NOTE = "11506-3"


def _text(note) -> str:
    parts = [f"{note.kind_label}"]
    parts += [f"{s.label}: {value}" for s, value in note.section_rows() if value]
    parts += list(note.record_facts or [])
    parts += [
        f"Addendum signed by {a.author.get_full_name()} {a.signed_at:%Y-%m-%d %H:%M} UTC: {a.text}"
        for a in note.addenda.all()
    ]
    return "\n".join(parts)


def document_reference(note) -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": f"therapy-note-{note.pk}",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": LOINC_PROGRESS_NOTE,
                    "display": "Progress note",
                }
            ],
            "text": note.kind_label,
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "https://ketaflow.example.test/fhir/therapy-note-kind",
                        "code": note.kind,
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{note.patient_id}"},
        "date": note.signed_at.isoformat() if note.signed_at else None,
        "author": [{"display": note.author.get_full_name()}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(_text(note).encode()).decode(),
                }
            }
        ],
    }


def bundle(patient, notes) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "total": len(notes),
        "entry": [{"resource": document_reference(n)} for n in notes],
    }
