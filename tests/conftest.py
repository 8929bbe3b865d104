"""Shared fixtures: clinics, staff of every role, signed-in clients, patients."""

import datetime
import itertools

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaflow.accounts.middleware import start_session
from ketaflow.accounts.models import User
from ketaflow.accounts.roles import FRONT_DESK, NURSE, OWNER, PRESCRIBER, THERAPIST
from ketaflow.tenancy.models import Chair, Clinic, Location, Membership

ROLES = [OWNER, PRESCRIBER, NURSE, THERAPIST, FRONT_DESK]
PASSWORD = "correct horse battery staple 42"
_seq = itertools.count(1)


@pytest.fixture
def make_clinic(db):
    def make(name=None, **extra):
        n = next(_seq)
        clinic = Clinic.objects.create(
            name=name or f"Test Clinic {n} (synthetic)", slug=f"test-{n}", **extra
        )
        for loc in ("North", "South"):
            location = Location.objects.create(clinic=clinic, name=loc)
            Chair.objects.create(clinic=clinic, location=location, name="Chair 1")
        return clinic

    return make


@pytest.fixture
def clinic(make_clinic):
    return make_clinic("Harbor Test Clinic (synthetic)")


@pytest.fixture
def other_clinic(make_clinic):
    return make_clinic("Other Test Clinic (synthetic)")


@pytest.fixture
def make_user(db):
    def make(clinic, *roles, locations=(), email=None, totp=True):
        n = next(_seq)
        user = User.objects.create_user(
            email=email or f"user{n}@test.ketaflow.test",
            password=PASSWORD,
            full_name=f"Test User{n}-Synth",
        )
        membership = Membership.objects.create(user=user, clinic=clinic, roles=list(roles))
        if locations:
            membership.locations.set(clinic.locations.filter(name__in=locations))
        if totp:
            TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        return user

    return make


@pytest.fixture
def staff(clinic, make_user):
    """One user per role in ``clinic``."""
    return {role: make_user(clinic, role) for role in ROLES}


def sign_in(client: Client, user: User) -> Client:
    """A client signed in with both factors, as the sign-in views leave it."""
    client.force_login(user)
    session = client.session
    device = TOTPDevice.objects.filter(
        user=user, confirmed=True
    ).first() or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id

    class _Req:
        pass

    req = _Req()
    req.session = session
    req.user = user
    start_session(req)
    session.save()
    return client


@pytest.fixture
def client_for(db):
    def make(user):
        return sign_in(Client(), user)

    return make


@pytest.fixture
def make_patient(db):
    from ketaflow.patients.models import Patient

    def make(clinic, **fields):
        n = next(_seq)
        data = {
            "mrn": f"T-{n:05d}",
            "legal_given_name": f"Given{n}",
            "legal_family_name": f"Family{n}-Synth",
            "date_of_birth": datetime.date(1980, 1, 1) + datetime.timedelta(days=n),
            "sex_assigned_at_birth": "female",
            "status": "active",
        }
        data.update(fields)
        return Patient.objects.create(clinic=clinic, **data)

    return make


@pytest.fixture
def patient(clinic, make_patient):
    return make_patient(clinic, legal_given_name="Riley", legal_family_name="Alvarez-Synth")
