import pytest
from django.core.exceptions import PermissionDenied

from ketaflow.accounts.permissions import ACTION_LABELS, MATRIX, can, require_permission, roles_can

EXPECTED = {
    # action: roles allowed (owner, prescriber, nurse, therapist, front_desk)
    "patients.view": "OPNTF",
    "patients.create": "OPN-F",
    "patients.edit_demographics": "OPN-F",
    "chart.view": "OPNT-",
    "chart.emergency_access": "-PNT-",
    "vitals.chart": "-PN--",
    "notes.sign": "-PNT-",
    "eligibility.decide": "-P---",
    "measures.record": "-PNT-",
    "measures.send": "-PNTF",
    "alerts.respond": "-PNT-",
    "intake.view": "OPNTF",
    "intake.manage": "OPN-F",
    "assessment.edit": "-PN--",
    "assessment.sign": "-P---",
    "consent.collect": "-PN-F",
    "consent.manage": "O----",
    "plans.edit": "-P---",
    "protocols.manage": "O----",
    "schedule.view": "OPNTF",
    "schedule.book": "OPNTF",
    "treatment.prescriber_decision": "-P---",
    "notes.cosign": "-P---",
    "rems.sign": "-PN--",
    "therapy.write": "-P-T-",
    "care_team.manage": "-PNTF",
    "letters.sign": "-P-T-",
    "users.manage": "O----",
    "clinic.settings": "O----",
    "audit.view": "O----",
    "export": "OP---",
    "api.tokens": "OPNTF",
}
ROLES = ["owner", "prescriber", "nurse", "therapist", "front_desk"]


def test_matrix_is_exactly_as_documented():
    assert set(MATRIX) == set(EXPECTED) == set(ACTION_LABELS)
    for action, cells in EXPECTED.items():
        for role, cell in zip(ROLES, cells, strict=True):
            assert roles_can([role], action) is (cell != "-"), (action, role)


def test_unknown_actions_and_no_roles_are_denied():
    assert not roles_can(["owner"], "something.new")
    assert not roles_can([], "patients.view")
    assert not roles_can(None, "patients.view")


def test_require_permission_is_per_clinic(clinic, other_clinic, staff, make_user):
    owner = staff["owner"]
    assert can(owner, "audit.view", clinic)
    assert not can(owner, "audit.view", other_clinic)
    with pytest.raises(PermissionDenied):
        require_permission(owner, "audit.view", other_clinic)
    with pytest.raises(PermissionDenied):
        require_permission(owner, "not.in.matrix", clinic)


def test_inactive_membership_has_no_rights(clinic, staff):
    nurse = staff["nurse"]
    nurse.memberships.update(is_active=False)
    nurse.__dict__.pop("_kf_memberships", None)
    assert not can(nurse, "patients.view", clinic)


def test_membership_changes_are_audited_and_guarded(clinic, staff, client_for):
    from ketaflow.audit.models import AuditEvent
    from ketaflow.tenancy.models import Membership

    owner = client_for(staff["owner"])
    membership = Membership.objects.get(user=staff["nurse"], clinic=clinic)
    response = owner.post(
        f"/accounts/users/{membership.pk}/", {"roles": ["nurse", "prescriber"], "is_active": "on"}
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.roles == ["nurse", "prescriber"]
    event = AuditEvent.objects.get(action="permission-change")
    assert event.detail["before"]["roles"] == ["nurse"] and event.detail["after"]["roles"] == [
        "nurse",
        "prescriber",
    ]
    # No roles at all is refused with the field named.
    bad = owner.post(f"/accounts/users/{membership.pk}/", {"roles": [], "is_active": "on"})
    assert "roles" in bad.context["form"].errors
    # An owner cannot remove their own owner role.
    own = Membership.objects.get(user=staff["owner"], clinic=clinic)
    bad = owner.post(f"/accounts/users/{own.pk}/", {"roles": ["nurse"], "is_active": "on"})
    assert "cannot remove your own owner role" in bad.content.decode()


def test_add_member_creates_user_with_one_time_password(clinic, staff, client_for):
    from ketaflow.audit.models import AuditEvent

    owner = client_for(staff["owner"])
    page = owner.post(
        "/accounts/users/add/",
        {
            "email": "new.nurse@test.ketaflow.test",
            "full_name": "New Nurse-Synth",
            "roles": ["nurse"],
        },
    )
    assert page.status_code == 200 and page.context["password"]
    assert AuditEvent.objects.filter(
        action="permission-change", detail__user="new.nurse@test.ketaflow.test"
    ).exists()
    again = owner.post(
        "/accounts/users/add/",
        {"email": "new.nurse@test.ketaflow.test", "full_name": "X", "roles": ["nurse"]},
    )
    assert "already a member" in again.content.decode()
