from ninja import Router, Schema

from ketaflow.accounts.permissions import MATRIX, membership_for, roles_can
from ketaflow.api import ERRORS, clinic_of

router = Router(tags=["account"])


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    clinic_id: int
    clinic: str
    roles: list[str]
    allowed_actions: list[str]
    token_scope: str | None


@router.get("", response={200: MeOut, **ERRORS}, summary="Who am I")
def me(request):
    clinic = clinic_of(request)
    membership = membership_for(request.user, clinic)
    roles = membership.roles if membership else []
    token = getattr(request, "api_token", None)
    return {
        "id": request.user.pk,
        "email": request.user.email,
        "full_name": request.user.full_name,
        "clinic_id": clinic.pk,
        "clinic": clinic.name,
        "roles": roles,
        "allowed_actions": sorted(action for action in MATRIX if roles_can(roles, action)),
        "token_scope": token.scope if token else None,
    }
