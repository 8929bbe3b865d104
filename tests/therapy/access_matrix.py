"""Routes of the therapy app for tests/security/test_access_matrix.py, and helpers that build
therapy objects for the therapy tests.

The matrix checks the role gates and the cross-clinic 404. Object-level rules (only the
author signs a draft; psychotherapy notes only for author and shared clinicians) are tested in
tests/therapy/test_privacy.py; the objects here are chosen so that every allowed role gets
through the gate (a signed record note, a signed letter with valid consent)."""

import datetime
import importlib.util
from pathlib import Path

PUBLIC = "public"

_spec = importlib.util.spec_from_file_location(
    "therapy_treatment_matrix",
    Path(__file__).resolve().parents[1] / "treatment" / "access_matrix.py",
)
treatment_matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(treatment_matrix)


def make_note(patient, author, kind="integration", sign=True, content=None, **kw):
    from ketaflow.therapy import note_types as nt
    from ketaflow.therapy import services

    content = content or {s.key: f"{s.label} text (synthetic)" for s in nt.sections(kind, "soap")}
    note = services.create_note(patient=patient, actor=author, kind=kind, content=content, **kw)
    if sign:
        note = services.sign_note(note=note, actor=author)
    return note


def make_clinician(patient, actor, consent=True, **extra):
    from ketaflow.therapy import services

    data = {
        "role": "psychiatrist",
        "name": "Dr. Rhea Referrer-Synth",
        "organization": "Outside Psychiatry (synthetic)",
        "email": "referrer@example.test",
        "consent_scope": "Treatment dates, doses, scores, response status and plan",
        "active": "on",
    }
    if consent:
        data["consent_given_on"] = (datetime.date.today() - datetime.timedelta(days=10)).isoformat()
    data.update(extra)
    return services.save_clinician(patient=patient, actor=actor, data=data)


def make_letter(patient, author, clinician, sign=True):
    from ketaflow.therapy import services

    letter = services.create_letter(patient=patient, actor=author, recipient=clinician)
    services.update_letter(
        letter=letter, actor=author, plan_text="Continue the series (synthetic)."
    )
    if sign:
        letter = services.sign_letter(letter=letter, actor=author)
    return letter


def _note(world):
    return make_note(world["patient"], world["staff"]["therapist"]).pk


def _goal(world):
    from ketaflow.therapy import services

    return services.save_goal(
        patient=world["patient"],
        actor=world["staff"]["therapist"],
        data={
            "title": "Return to work (synthetic)",
            "status": "active",
            "instrument": "wsas",
            "comparator": "lt",
            "threshold": "10",
        },
    ).pk


def _practice_obj(world):
    from ketaflow.therapy import services

    if "_th_practice" not in world:
        world["_th_practice"] = services.save_practice(
            patient=world["patient"],
            actor=world["staff"]["therapist"],
            data={
                "kind": "exercise",
                "title": "Walk 20 minutes",
                "days_per_week": "5",
                "active": "on",
            },
        )
    return world["_th_practice"]


def _practice(world):
    return _practice_obj(world).pk


def _link(world):
    from ketaflow.therapy import services

    _practice_obj(world)
    link, _raw = services.create_practice_link(
        patient=world["patient"], actor=world["staff"]["therapist"]
    )
    return link.pk


def _token(world):
    from ketaflow.therapy import services

    _practice_obj(world)
    _link_obj, raw = services.create_practice_link(
        patient=world["patient"], actor=world["staff"]["therapist"]
    )
    return raw


def _clinician_obj(world):
    if "_th_clinician" not in world:
        world["_th_clinician"] = make_clinician(world["patient"], world["staff"]["front_desk"])
    return world["_th_clinician"]


def _clinician(world):
    return _clinician_obj(world).pk


def _letter(world):
    return make_letter(world["patient"], world["staff"]["therapist"], _clinician_obj(world)).pk


def _plan(world):
    return treatment_matrix.make_plan(
        world["clinic"], world["patient"], world["staff"]["prescriber"]
    ).pk


OBJECTS = {
    "therapy_note": _note,
    "therapy_goal": _goal,
    "therapy_practice": _practice,
    "therapy_practice_link": _link,
    "therapy_token": _token,
    "therapy_clinician": _clinician,
    "therapy_letter": _letter,
    "therapy_plan": _plan,
}

P = {"pk": "patient"}
WEB = {
    "therapy:note_new": ("get", "therapy.write", P),
    "therapy:note": ("get", "chart.view", {"pk": "therapy_note"}),
    "therapy:note_edit": ("get", "therapy.write", {"pk": "therapy_note"}),
    "therapy:note_sign": ("post", "therapy.write", {"pk": "therapy_note"}),
    "therapy:note_addendum": ("post", "therapy.write", {"pk": "therapy_note"}),
    "therapy:note_share": ("post", "therapy.write", {"pk": "therapy_note"}),
    "therapy:note_release": ("post", "therapy.write", {"pk": "therapy_note"}),
    "therapy:plan": ("get", "chart.view", P),
    "therapy:goal_new": ("get", "therapy.write", P),
    "therapy:goal_edit": ("get", "therapy.write", {"pk": "therapy_goal"}),
    "therapy:practice_new": ("get", "therapy.write", P),
    "therapy:practice_edit": ("get", "therapy.write", {"pk": "therapy_practice"}),
    "therapy:practice_day": ("post", "therapy.write", {"pk": "therapy_practice"}),
    "therapy:practice_link": ("post", "therapy.write", P),
    "therapy:practice_link_revoke": ("post", "therapy.write", {"pk": "therapy_practice_link"}),
    "therapy:care_team": ("get", "care_team.manage", P),
    "therapy:clinician_new": ("get", "care_team.manage", P),
    "therapy:clinician_edit": ("get", "care_team.manage", {"pk": "therapy_clinician"}),
    "therapy:letter_new": ("get", "letters.sign", P),
    "therapy:letter": ("get", "chart.view", {"pk": "therapy_letter"}),
    "therapy:letter_edit": ("post", "letters.sign", {"pk": "therapy_letter"}),
    "therapy:letter_sign": ("post", "letters.sign", {"pk": "therapy_letter"}),
    "therapy:letter_send": ("post", "letters.sign", {"pk": "therapy_letter"}),
    "therapy:letter_pdf": ("get", "chart.view", {"pk": "therapy_letter"}),
    "therapy:course": ("get", "chart.view", {"pk": "therapy_plan"}),
    "therapy:export": ("get", "export", P),
    "therapy:settings": ("get", "clinic.settings", {}),
    "therapy:practice_respond": ("get", PUBLIC, {"token": "therapy_token"}),
}
PID = {"patient_id": "patient"}
NOTE = {"note_id": "therapy_note"}
LETTER = {"letter_id": "therapy_letter"}
API = {
    "ketaflow_therapy_api_list_notes": ("chart.view", PID),
    "ketaflow_therapy_api_create_note": ("therapy.write", PID),
    "ketaflow_therapy_api_get_note": ("chart.view", NOTE),
    "ketaflow_therapy_api_update_note": ("therapy.write", NOTE),
    "ketaflow_therapy_api_sign_note": ("therapy.write", NOTE),
    "ketaflow_therapy_api_add_addendum": ("therapy.write", NOTE),
    "ketaflow_therapy_api_share_note": ("therapy.write", NOTE),
    "ketaflow_therapy_api_release_note": ("therapy.write", NOTE),
    "ketaflow_therapy_api_notes_fhir": ("export", PID),
    "ketaflow_therapy_api_list_goals": ("chart.view", PID),
    "ketaflow_therapy_api_create_goal": ("therapy.write", PID),
    "ketaflow_therapy_api_update_goal": ("therapy.write", {"goal_id": "therapy_goal"}),
    "ketaflow_therapy_api_list_practices": ("chart.view", PID),
    "ketaflow_therapy_api_create_practice": ("therapy.write", PID),
    "ketaflow_therapy_api_record_practice_day": (
        "therapy.write",
        {"practice_id": "therapy_practice"},
    ),
    "ketaflow_therapy_api_list_clinicians": ("care_team.manage", PID),
    "ketaflow_therapy_api_create_clinician": ("care_team.manage", PID),
    "ketaflow_therapy_api_update_clinician": (
        "care_team.manage",
        {"clinician_id": "therapy_clinician"},
    ),
    "ketaflow_therapy_api_list_letters": ("chart.view", PID),
    "ketaflow_therapy_api_get_letter": ("chart.view", LETTER),
    "ketaflow_therapy_api_update_letter": ("letters.sign", LETTER),
    "ketaflow_therapy_api_create_letter": ("letters.sign", {"clinician_id": "therapy_clinician"}),
    "ketaflow_therapy_api_sign_letter": ("letters.sign", LETTER),
    "ketaflow_therapy_api_send_letter": ("letters.sign", LETTER),
}
BODIES = {
    "therapy:note_addendum": {"text": "Clarification added (synthetic)."},
    "therapy:note_share": {"user": "0"},
    "therapy:note_release": {"reason": "Patient's written authorization (synthetic)"},
    "therapy:letter_edit": {"plan_text": "Continue (synthetic)."},
    "ketaflow_therapy_api_create_note": {
        "kind": "progress",
        "content": {"subjective": "Feeling steadier (synthetic)."},
    },
    "ketaflow_therapy_api_update_note": {"content": {"themes": "x"}},
    "ketaflow_therapy_api_add_addendum": {"text": "Clarification (synthetic)."},
    "ketaflow_therapy_api_share_note": {"user_id": 0},
    "ketaflow_therapy_api_release_note": {"reason": "Patient's written authorization"},
    "ketaflow_therapy_api_create_goal": {"title": "Sleep 7 hours (synthetic)"},
    "ketaflow_therapy_api_update_goal": {"status": "met"},
    "ketaflow_therapy_api_create_practice": {"kind": "sleep", "title": "Lights out by 23:00"},
    "ketaflow_therapy_api_record_practice_day": {"day": "2000-01-01", "done": True},
    "ketaflow_therapy_api_create_clinician": {
        "role": "primary_care",
        "name": "Dr. Pat Primary-Synth",
    },
    "ketaflow_therapy_api_update_clinician": {"phone": "555 010 2222"},
    "ketaflow_therapy_api_update_letter": {"plan_text": "Continue (synthetic)."},
    "ketaflow_therapy_api_create_letter": {},
}
