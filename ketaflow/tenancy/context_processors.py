from ketaflow.accounts.permissions import MATRIX, roles_can


class _Perms:
    """``{% if perms_kf.chart_view %}``: the matrix, for templates."""

    def __init__(self, roles):
        self._roles = roles

    def __getattr__(self, name):
        action = name.replace("_", ".", 1)
        if action not in MATRIX:
            raise AttributeError(name)
        return roles_can(self._roles, action)


def clinic(request):
    from ketaflow.web.navigation import items

    membership = getattr(request, "membership", None)
    roles = membership.roles if membership else []
    return {
        "nav_items": [entry for entry in items() if roles_can(roles, entry.action)],
        "current_clinic": getattr(request, "clinic", None),
        "current_membership": membership,
        "user_clinics": getattr(request, "user_clinics", []),
        "perms_kf": _Perms(membership.roles if membership else []),
    }
