PUBLIC = "public"

WEB = {
    "education:index": ("get", PUBLIC, {}),
    "education:topic": ("get", PUBLIC, {"route": "iv-ketamine"}),
    "education:clinic_index": ("get", PUBLIC, {"clinic_slug": "clinic"}),
    "education:clinic_topic": (
        "get",
        PUBLIC,
        {"clinic_slug": "clinic", "route": "esketamine-nasal"},
    ),
}


def _clinic_slug(world):
    return world["clinic"].slug


OBJECTS = {"clinic": _clinic_slug}
