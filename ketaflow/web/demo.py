"""The synthetic demo clinics: deterministic apart from passwords and sign-in secrets.

Every name ends in "-Synth" and every clinic is flagged ``is_demo``, so no one can take
this data for real patients. Running the seed again changes nothing that exists.
"""

import base64
import datetime
import json
import os
import random
import secrets
import stat
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.models import User
from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER, THERAPIST
from ketaflow.accounts.services import replace_recovery_codes
from ketaflow.config import var_dir
from ketaflow.patients import services as patient_services
from ketaflow.patients.models import Patient
from ketaflow.tenancy.models import Chair, Clinic, Location, Membership

GIVEN = [
    "Avery",
    "Blake",
    "Casey",
    "Dana",
    "Emery",
    "Finley",
    "Gray",
    "Harper",
    "Indigo",
    "Jordan",
    "Kai",
    "Logan",
    "Morgan",
    "Noel",
    "Oakley",
    "Parker",
    "Quinn",
    "Riley",
    "Sage",
    "Taylor",
]
FAMILY = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Diaz",
    "Ellis",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quintero",
    "Rossi",
    "Sato",
    "Tanaka",
]


@dataclass(frozen=True)
class DemoUser:
    email: str
    full_name: str
    roles: tuple[str, ...]
    credentials: str = ""
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoClinic:
    slug: str
    name: str
    timezone: str
    mrn_prefix: str
    locations: dict[str, int]  # location name -> number of chairs
    users: tuple[DemoUser, ...]
    patients: int
    seed: int


CLINICS = [
    DemoClinic(
        slug="demo",
        name="Harbor Ketamine Clinic (synthetic demo)",
        timezone="America/New_York",
        mrn_prefix="HKC",
        locations={"Downtown": 6, "Northside": 4},
        users=(
            DemoUser("owner@demo.ketaflow.test", "Olivia Owner-Synth", (OWNER,), "MD"),
            DemoUser(
                "prescriber@demo.ketaflow.test", "Dr. Paul Prescriber-Synth", (PRESCRIBER,), "MD"
            ),
            DemoUser("nurse@demo.ketaflow.test", "Nina Nurse-Synth", (NURSE,), "RN", ("Downtown",)),
            DemoUser("therapist@demo.ketaflow.test", "Theo Therapist-Synth", (THERAPIST,), "LCSW"),
            DemoUser("frontdesk@demo.ketaflow.test", "Fran Frontdesk-Synth", (FRONT_DESK,)),
        ),
        patients=40,
        seed=20261122,
    ),
    DemoClinic(
        slug="second-demo",
        name="Second Valley Clinic (synthetic demo)",
        timezone="America/Denver",
        mrn_prefix="SVC",
        locations={"Main": 3},
        users=(
            DemoUser("owner@second.ketaflow.test", "Sam Owner-Synth", (OWNER, PRESCRIBER), "DO"),
            DemoUser("nurse@second.ketaflow.test", "Sid Nurse-Synth", (NURSE,), "RN"),
        ),
        patients=8,
        seed=7,
    ),
]

# Status mix for the demo clinic's patients; later issues add their own stages on top.
STATUS_CYCLE = ["active"] * 11 + ["prospective"] * 5 + ["paused"] * 2 + ["discharged"] * 2


def credentials_path():
    return var_dir() / "demo-credentials.json"


def _write_credentials(data: dict) -> None:
    path = credentials_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
    tmp.replace(path)


def _ensure_user(spec: DemoUser, known: dict) -> dict:
    """Create the user (or reuse it with known credentials); returns its credentials entry."""
    user = User.objects.filter(email=spec.email).first()
    if user is not None and spec.email in known:
        return known[spec.email]
    password = secrets.token_urlsafe(12)
    if user is None:
        user = User.objects.create_user(
            email=spec.email,
            password=password,
            full_name=spec.full_name,
            credentials=spec.credentials,
        )
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
    recovery = replace_recovery_codes(user)
    return {
        "email": spec.email,
        "password": password,
        "totp_secret": base64.b32encode(device.bin_key).decode(),
        "recovery_codes": recovery,
        "roles": list(spec.roles),
    }


def _patient_data(
    rng: random.Random, index: int, clinic: Clinic, spec: DemoClinic, staff: dict
) -> dict:
    given = GIVEN[(index * 7 + spec.seed) % len(GIVEN)]
    family = FAMILY[(index * 3 + spec.seed // 3) % len(FAMILY)]
    dob = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(0, 365 * 50))
    sex = rng.choice(["female", "male", "female", "male", "intersex"])
    gender = {"female": "woman", "male": "man"}.get(sex, "non-binary")
    if index % 13 == 5:
        gender = "non-binary"
    pronouns = {"woman": "she/her", "man": "he/him"}.get(gender, "they/them")
    status = STATUS_CYCLE[index % len(STATUS_CYCLE)]
    locations = list(clinic.locations.order_by("name"))
    prescriber = staff.get(PRESCRIBER)
    therapist = staff.get(THERAPIST)
    return {
        "mrn": f"{spec.mrn_prefix}-{index + 1:06d}",
        "legal_given_name": given,
        "legal_family_name": f"{family}-Synth",
        "preferred_name": "" if index % 6 else GIVEN[(index + 3) % len(GIVEN)],
        "date_of_birth": dob.isoformat(),
        "sex_assigned_at_birth": sex,
        "gender_identity": gender,
        "pronouns": pronouns,
        "phone": f"555-01{index % 100:02d}",
        "email": f"{given.lower()}.{family.lower()}@example.test",
        "address_line1": f"{100 + index} Synthetic Way",
        "city": "Demoville",
        "region": "NY" if spec.slug == "demo" else "CO",
        "postal_code": f"{10000 + index}",
        "emergency_contact_name": f"{GIVEN[(index + 5) % len(GIVEN)]} {family}-Synth",
        "emergency_contact_relationship": rng.choice(["spouse", "parent", "sibling", "friend"]),
        "emergency_contact_phone": f"555-02{index % 100:02d}",
        "preferred_location": locations[index % len(locations)].pk,
        "prescriber": prescriber.pk if prescriber and status != "prospective" else "",
        "therapist": therapist.pk if therapist and status == "active" and index % 2 == 0 else "",
        "status": status,
    }


def _seed_domains(clinic: Clinic, staff: dict, spec: DemoClinic) -> None:
    """Let each installed domain app add its part of the demo (``ketaflow.<app>.demo.seed``).

    Each receives the clinic, ``staff`` (role -> user) and a Random seeded per clinic and app,
    and must be idempotent (create only what is missing). ``post_seed`` runs after every app's
    ``seed``.
    """
    from django.conf import settings

    modules = [
        (name, import_module(f"ketaflow.{name}.demo"))
        for name in settings.DOMAIN_APPS
        if f"ketaflow.{name}" in settings.INSTALLED_APPS and find_spec(f"ketaflow.{name}.demo")
    ]
    # Two phases: every app's seed, then the optional post_seed of apps whose part of the demo
    # builds on later apps' data (e.g. questionnaire histories on plans and appointments).
    for phase in ("seed", "post_seed"):
        for name, module in modules:
            if hasattr(module, phase):
                getattr(module, phase)(
                    clinic=clinic, staff=staff, rng=random.Random(f"{spec.seed}:{name}:{phase}")
                )


@transaction.atomic
def seed() -> dict:
    """Create whatever of the demo is missing. Returns the credentials (also in var/)."""
    path = credentials_path()
    known = {}
    if path.exists():
        known = {entry["email"]: entry for entry in json.loads(path.read_text()).get("users", [])}
    entries = []
    for spec in CLINICS:
        clinic, _ = Clinic.objects.get_or_create(
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "timezone": spec.timezone,
                "is_demo": True,
                "mrn_prefix": spec.mrn_prefix,
            },
        )
        for name, chairs in spec.locations.items():
            location, _ = Location.objects.get_or_create(
                clinic=clinic, name=name, defaults={"address": f"{name}, Demoville (synthetic)"}
            )
            for number in range(1, chairs + 1):
                Chair.objects.get_or_create(
                    clinic=clinic, location=location, name=f"Chair {number}"
                )
        staff = {}
        for user_spec in spec.users:
            entry = _ensure_user(user_spec, known)
            entries.append({**entry, "clinic": clinic.name})
            user = User.objects.get(email=user_spec.email)
            membership, created = Membership.objects.get_or_create(
                user=user, clinic=clinic, defaults={"roles": list(user_spec.roles)}
            )
            if created and user_spec.locations:
                membership.locations.set(clinic.locations.filter(name__in=user_spec.locations))
            for role in user_spec.roles:
                staff.setdefault(role, user)
        owner = staff[OWNER]
        rng = random.Random(spec.seed)
        existing = set(Patient.objects.for_clinic(clinic).values_list("mrn", flat=True))
        for index in range(spec.patients):
            data = _patient_data(rng, index, clinic, spec, staff)
            if data["mrn"] not in existing:
                patient_services.create_patient(clinic=clinic, actor=owner, data=data)
        Clinic.objects.filter(pk=clinic.pk, next_mrn__lte=spec.patients).update(
            next_mrn=spec.patients + 1
        )
        _seed_domains(clinic, staff, spec)
    data = {
        "note": "Synthetic demo logins, random per install. Keep this file private (mode 600).",
        "url": "http://127.0.0.1:8000/",
        "users": entries,
    }
    _write_credentials(data)
    return data


def describe(data: dict) -> str:
    lines = [
        "Demo logins (synthetic clinics; also saved in var/demo-credentials.json, mode 600):",
        "Sign in with email and password, then the 6-digit code: add the secret to an authenticator app,",
        "or run  .venv/bin/ketaflow demo-code EMAIL  to print the current code.",
        "",
    ]
    for entry in data["users"]:
        lines.append(
            f"  {entry['email']:<32} password {entry['password']:<18} TOTP secret {entry['totp_secret']}"
            f"  ({', '.join(entry['roles'])} at {entry['clinic']})"
        )
    return "\n".join(lines)
