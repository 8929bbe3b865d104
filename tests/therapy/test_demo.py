import random

from ketaflow.therapy import demo
from ketaflow.therapy.models import (
    Goal,
    OutsideClinician,
    Practice,
    PracticeEntry,
    ProgressLetter,
    TherapyNote,
)


def test_demo_kap_patient_full_cycle_idempotent(clinic, staff, patient, kap_plan, client_for):
    demo.post_seed(clinic=clinic, staff=staff, rng=random.Random(1))
    kinds = sorted(TherapyNote.all_kinds.filter(patient=patient).values_list("kind", flat=True))
    assert kinds == ["dosing", "integration", "preparation", "psychotherapy"]
    assert all(n.is_signed for n in TherapyNote.all_kinds.all())
    dosing = TherapyNote.all_kinds.get(kind="dosing")
    assert dosing.session.state == "signed" and "Oral / sublingual" in dosing.record_facts[0]
    assert Goal.objects.filter(patient=patient).count() == 3
    assert Practice.objects.filter(patient=patient).count() == 5
    assert PracticeEntry.objects.filter(patient=patient, source="link").exists()
    assert OutsideClinician.objects.filter(patient=patient).count() == 3
    letter = ProgressLetter.objects.get(patient=patient)
    assert letter.is_signed and letter.facts["treatments"][0]["route"].startswith("Oral")
    page = client_for(staff["therapist"]).get(f"/therapy/courses/{kap_plan.pk}/").content.decode()
    assert "Dosing session 1" in page and "KAP integration note" in page
    counts = (TherapyNote.all_kinds.count(), Goal.objects.count(), ProgressLetter.objects.count())
    demo.post_seed(clinic=clinic, staff=staff, rng=random.Random(1))
    assert (
        TherapyNote.all_kinds.count(),
        Goal.objects.count(),
        ProgressLetter.objects.count(),
    ) == counts


def test_demo_skips_clinics_without_a_therapist(clinic, staff, kap_plan):
    demo.post_seed(
        clinic=clinic,
        staff={k: v for k, v in staff.items() if k != "therapist"},
        rng=random.Random(1),
    )
    assert not TherapyNote.all_kinds.exists()
