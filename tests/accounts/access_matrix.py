"""Account routes added after the core table in tests/security/test_access_matrix.py."""

SIGNED_IN = "signed-in"

# An invitation that is not the caller's answers like an unknown one: back to the account page.
WEB = {
    "accounts:invitation_withdraw": ("post", "users.manage", {"pk": "invitation"}),
    "accounts:invitation_accept": ("post", SIGNED_IN, {"pk": 999999}),
    "accounts:invitation_decline": ("post", SIGNED_IN, {"pk": 999999}),
}


def _invitation(world):
    from ketaflow.accounts.services import add_member

    _, _, invitation = add_member(
        actor=world["staff"]["owner"],
        clinic=world["clinic"],
        email=world["outsider"].email,
        full_name="Outside Person",
        roles=["nurse"],
        locations=[],
    )
    return invitation.pk


OBJECTS = {"invitation": _invitation}
