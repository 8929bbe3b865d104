"""Account routes added after the core table in tests/security/test_access_matrix.py."""

SIGNED_IN = "signed-in"

# An invitation that is not the caller's answers like an unknown one: back to the account page.
WEB = {
    "accounts:invitation_accept": ("post", SIGNED_IN, {"pk": 999999}),
    "accounts:invitation_decline": ("post", SIGNED_IN, {"pk": 999999}),
}
