"""The bad-input gate: hostile values in every field of every API operation and every form.

Generated, like ``test_access_matrix.py`` (whose route tables and object builders it reuses),
from the OpenAPI schema and from the forms the pages render, so a new route or field is fuzzed
without being listed here:

* every API operation: each path parameter, query parameter and body property in turn gets
  values from the corpus below (chosen by the field's type, plus a rotating sample of the
  rest), the other fields holding plausible values generated from the schema;
* every form a page renders (the pages of ``WEB``, crawled once as a user with every role):
  each field in turn gets corpus values, posted (or, for GET forms, sent in the query string)
  to the form's route, and each route's integer URL ids are replaced by out-of-range ones;
* one 10 MB body per route family (app), to the API and to a web form.

Asserted for every request: no 5xx, and API errors are JSON. After each route's requests, the
pages and API reads of that route's app and the patient's chart still render (no 5xx): a value
that was accepted must not break a page for good.

The data (one clinic, one user per role, the objects of the access matrix) is built once for
the module inside a transaction that is rolled back at the end; each test's own writes are
rolled back after it (pytest-django's ``db``).
"""

import datetime
import importlib.util
import json
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from ketaflow.api import api

HERE = Path(__file__).resolve().parent


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matrix = _load("_bad_input_access_matrix", HERE / "test_access_matrix.py")
conftest = _load("_bad_input_conftest", HERE.parent / "conftest.py")

# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------


class Raw(str):
    """A JSON literal sent as is (``1E+999999999`` is not something json.dumps can write)."""


TODAY = datetime.date.today()
HUGE_INT = 10**20
TWENTY_DIGITS = "12345678901234567890"
LONG = "x" * 10_000
CORPUS = {
    "integer": [HUGE_INT, -1, 0, 2**63, TWENTY_DIGITS, Raw("1E+999999999"), "NaN"],
    "number": [
        Raw("1E+999999999"),
        "1E+999999999",
        Raw("NaN"),
        Raw("-Infinity"),
        "Infinity",
        TWENTY_DIGITS,
        Raw(TWENTY_DIGITS + ".5"),
        -1,
        0,
        "1e-22",
    ],
    "date": ["0001-01-01", "9999-12-31", "2024-02-30", "31/31/2031", "1E+999999999"],
    "date-time": [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00",
        "9999-12-31T23:59",
        "2024-02-30T25:61",
        "0001-01-01",
    ],
    "string": ["\ud800", "a\x00b", LONG, "", "\u202eevil\u202c", "e\u0301\u0302\u0303\u0304"],
    "boolean": ["NaN", 2, [], {"$gt": ""}],
    "array": [{"$gt": ""}, "\ud800", [None], [HUGE_INT]],
    "object": [[], "x", None, {"\ud800": "\x00"}],
}
EVERYTHING = [
    *{repr(v): v for values in CORPUS.values() for v in values}.values(),
    "👩🏽‍⚕️💉",
    None,
    True,
    [],
    {},
]
PATH_IDS = [HUGE_INT, 2**63, -1, 0]
#: Tried in every field of the type; the rest of the corpus rotates over the fields (one value
#: of the type's corpus and one of everything per field), so each value meets many fields.
ALWAYS = {
    "integer": [HUGE_INT],
    "number": [Raw("1E+999999999")],
    "date": ["0001-01-01", "9999-12-31"],
    "date-time": ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
    "string": ["\ud800"],
}


def _pick(kind: str, key: str) -> list:
    """The values for one field: its type's headline values, one more value of its type and
    one value of the whole corpus, chosen by a hash of the route and field."""
    own = CORPUS.get(kind, CORPUS["string"])
    start = zlib.crc32(key.encode())
    values = [*ALWAYS.get(kind, []), own[start % len(own)], EVERYTHING[start % len(EVERYTHING)]]
    unique = []
    for v in values:
        if not any(type(v) is type(u) and v == u for u in unique):
            unique.append(v)
    return unique


#: Requests per route at most: every field's first (headline) value comes first, then the
#: second values, and so on, so a form with many fields still gets each field tried.
MAX_CASES_PER_ROUTE = 40


def _interleave(groups: list[list]) -> list:
    """Round-robin over the fields' value lists, up to MAX_CASES_PER_ROUTE requests."""
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out[:MAX_CASES_PER_ROUTE]


def _json_body(data) -> str:
    """JSON text, with Raw values written as literals and lone surrogates as \\ud800 escapes."""
    raws = {}

    def mark(value):
        if isinstance(value, Raw):
            token = f"__raw_{len(raws)}__"
            raws[token] = str(value)
            return token
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(data))
    for token, literal in raws.items():
        text = text.replace(f'"{token}"', literal)
    return text


def _form_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else ""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _form_body(data: dict) -> str:
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) and key.startswith("*") else [value]:
            pairs.append((key.lstrip("*"), _form_value(item)))
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


# ---------------------------------------------------------------------------
# The world: built once for the module, rolled back at its end
# ---------------------------------------------------------------------------


def _make_patient_factory():
    from ketaflow.patients.models import Patient

    counter = iter(range(1, 10**6))

    def make(clinic, **fields):
        n = next(counter)
        data = {
            "mrn": f"BI-{n:05d}",
            "legal_given_name": f"Given{n}",
            "legal_family_name": f"Family{n}-Synth",
            "date_of_birth": datetime.date(1980, 1, 1) + datetime.timedelta(days=n),
            "sex_assigned_at_birth": "female",
            "status": "active",
        }
        data.update(fields)
        return Patient.objects.create(clinic=clinic, **data)

    return make


def _make_user(clinic, *roles, email):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaflow.accounts.models import User
    from ketaflow.tenancy.models import Membership

    user = User.objects.create_user(
        email=email, password=conftest.PASSWORD, full_name=f"Bad Input {email.split('@')[0]}"
    )
    Membership.objects.create(user=user, clinic=clinic, roles=list(roles))
    TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    return user


def _clinic(name, slug):
    from ketaflow.tenancy.models import Chair, Clinic, Location

    clinic = Clinic.objects.create(name=name, slug=slug)
    for loc in ("North", "South"):
        location = Location.objects.create(clinic=clinic, name=loc)
        Chair.objects.create(clinic=clinic, location=location, name="Chair 1")
    return clinic


class _Forms(HTMLParser):
    """The forms of a page: action, method and fields with their rendered values."""

    def __init__(self):
        super().__init__()
        self.forms, self._form, self._select, self._textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "fields": {},
                "types": {},
            }
            self.forms.append(self._form)
            return
        form = self._form
        if form is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            form["types"].setdefault(name, kind)
            if kind in ("checkbox", "radio"):
                if "checked" in a or name not in form["fields"]:
                    form["fields"][name] = a.get("value", "on") if "checked" in a else None
                if kind == "radio" and form["fields"][name] is None:
                    form["fields"][name] = a.get("value", "on")
                return
            form["fields"][name] = a.get("value") or _plausible(kind, a)
        elif tag == "select":
            self._select = name
            form["types"][name] = "select"
            form["fields"].setdefault(name, None)
        elif tag == "option" and self._select:
            first = form["fields"].get(self._select) is None and a.get("value", "x") != ""
            if first or "selected" in a:
                form["fields"][self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            form["types"][name] = "textarea"
            form["fields"][name] = "Synthetic text"

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _plausible(kind, attrs):
    if kind == "date":
        return attrs.get("max") or TODAY.isoformat()
    if kind == "datetime-local":
        return datetime.datetime.now().strftime("%Y-%m-%dT%H:%M")
    if kind == "time":
        return "10:00"
    if kind == "number":
        return attrs.get("min") or "1"
    if kind == "email":
        return "someone@example.test"
    if kind == "hidden":
        return ""
    return "Synthetic"


def _kind_of_input(kind: str) -> str:
    return {
        "number": "number",
        "date": "date",
        "datetime-local": "date-time",
        "time": "date-time",
        "checkbox": "boolean",
    }.get(kind, "string")


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _build_world():
    from ketaflow.scheduling.defaults import ensure_types

    clinic = _clinic("Bad Input Clinic (synthetic)", "bad-input")
    other = _clinic("Bad Input Other (synthetic)", "bad-input-other")
    staff = {
        role: _make_user(clinic, role, email=f"{role}@bad-input.test") for role in matrix.ROLES
    }
    fuzzer = _make_user(clinic, *matrix.ROLES, email="everyone@bad-input.test")
    make_patient = _make_patient_factory()
    patient = make_patient(clinic, legal_given_name="Riley", legal_family_name="Fuzz-Synth")

    def client_for(user):
        return conftest.sign_in(Client(), user)

    world = {
        "clinic": clinic,
        "staff": staff,
        "patient": patient,
        "make_patient": make_patient,
        "outsider": _make_user(other, *matrix.ROLES, email="outsider@bad-input.test"),
        "client_for": client_for,
    }
    from ketaflow.accounts.models import ApiToken
    from ketaflow.tenancy.models import Membership

    token = ApiToken.objects.create(
        user=fuzzer,
        clinic=clinic,
        name="t",
        prefix="kf_x",
        token_hash="0" * 64,
        expires_at="2099-01-01T00:00:00Z",
    )
    objects = {
        "patient": patient.pk,
        "membership": Membership.objects.get(user=staff["nurse"], clinic=clinic).pk,
        "token": token.pk,
    }
    for kind, build in matrix.OBJECTS.items():
        objects[kind] = build(world)
    world["objects"] = objects
    world["fuzzer"] = fuzzer
    location = clinic.locations.get(name="North")
    world["ids"] = {
        "patient": patient.pk,
        "location": location.pk,
        "chair": location.chairs.first().pk,
        "type": next(iter(ensure_types(clinic).values())).pk,
        "prescriber": staff["prescriber"].pk,
        "therapist": staff["therapist"].pk,
        "user": fuzzer.pk,
        "plan": objects.get("plan"),
        "appointment": objects.get("tx_appointment"),
        "session": objects.get("tx_session"),
    }
    world["forms"] = {
        **_crawl_forms(Client(), objects, public=True),
        **_crawl_forms(client_for(fuzzer), objects),
    }
    return world


def _page_urls(objects, public: bool = False) -> dict[str, str]:
    """name -> URL of every GET page in the access matrix that this world can resolve
    (``public``: the pages anyone may open, such as the intake and questionnaire links)."""
    urls = {}
    for name, (method, need, params) in matrix.WEB.items():
        if method != "get" or (need == matrix.PUBLIC) != public or name in NOT_FUZZED:
            continue
        urls[name] = reverse(name, kwargs=matrix._resolve(params, objects))
    return urls


#: Routes that only end the session or report health: nothing to fuzz.
NOT_FUZZED = {"accounts:logout", "healthz"}


def _crawl_forms(client, objects, public=False) -> dict[str, list[dict]]:
    """url name of a form's target -> the forms that target it, from every page's HTML."""
    found: dict[str, list[dict]] = {}
    for url in _page_urls(objects, public).values():
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        parser = _Forms()
        parser.feed(response.content.decode())
        for form in parser.forms:
            target = urlsplit(urljoin(url, form["action"] or url)).path
            try:
                name = resolve(target).view_name
            except Resolver404:
                continue
            if name.startswith("api") or not form["fields"]:
                continue
            form = {**form, "fields": {k: v for k, v in form["fields"].items() if v is not None}}
            form["fields"].pop("csrfmiddlewaretoken", None)
            found.setdefault(name, []).append(form)
    return found


# ---------------------------------------------------------------------------
# Checking responses
# ---------------------------------------------------------------------------


def _request(client, method, url, body=None, content_type=None):
    """The response, or a stand-in 500 carrying the exception the view raised."""
    try:
        with transaction.atomic():
            if method == "get":
                return client.get(url)
            return client.generic(method.upper(), url, body or "", content_type=content_type)
    except Exception as exc:

        class Failed:
            status_code = 500
            content = f"{type(exc).__name__}: {exc}"[:300].encode()

            def get(self, *_):
                return "raised"

        return Failed()


def _log(problems):
    """With BAD_INPUT_LOG=path, append the problems there as they are found (long runs)."""
    import os

    if problems and os.environ.get("BAD_INPUT_LOG"):
        with open(os.environ["BAD_INPUT_LOG"], "a", encoding="utf-8") as f:
            f.write("\n".join(p.encode("unicode_escape").decode()[:400] for p in problems))
            f.write("\n")


def _problem(response, url) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} {response.content[:300]!r}"
    if url.startswith("/api/") and response.status_code >= 400:
        if "application/json" not in (response.get("Content-Type") or ""):
            return f"{response.status_code} not JSON: {response.get('Content-Type')}"
        try:
            json.loads(response.content)
        except ValueError:
            return f"{response.status_code} body is not JSON"
    return None


def _still_renders(client, world, app: str, writes: list) -> list[str]:
    """Pages of ``app`` and the patient's chart, after the writes: none may answer 5xx."""
    from ketaflow.patients.chart import TABS

    pk = world["patient"].pk
    urls = [f"/patients/{pk}/", *(f"/patients/{pk}/{tab.slug}/" for tab in TABS)]
    urls += [u for n, u in _page_urls(world["objects"]).items() if n.split(":")[0] == app]
    for route, method, operation in _OPERATIONS:
        if method == "get" and operation.startswith(f"ketaflow_{app}_api_"):
            _, params = matrix.API[operation]
            if "{" not in route.format(**matrix._resolve(params, world["objects"])):
                urls.append(route.format(**matrix._resolve(params, world["objects"])))
    problems = []
    if not writes:
        return problems
    for url in urls:
        response = _request(client, "get", url)
        if response.status_code >= 500:
            problems.append(
                f"GET {url} -> {response.status_code} {response.content[:200]!r} "
                f"after {len(writes)} accepted write(s): {writes[:5]}"
            )
    return problems


# ---------------------------------------------------------------------------
# API operations
# ---------------------------------------------------------------------------

SCHEMA = api.get_openapi_schema()
_OPERATIONS = sorted(matrix._operations())


def _deref(schema):
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [_deref(s) for s in schema[key] if s.get("type") != "null"]
            if options:
                return {**options[0], **{k: v for k, v in schema.items() if k != key}}
    return schema


def _kind(schema) -> str:
    schema = _deref(schema)
    if schema.get("format") in ("date", "date-time"):
        return schema["format"]
    return schema.get("type", "string")


def _example(name, schema, world):
    """A plausible value for one field, so that other fields' values reach the server's checks."""
    schema = _deref(schema)
    base = name.removesuffix("_id")
    if base in world["ids"] and world["ids"][base] is not None:
        return world["ids"][base]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = _kind(schema)
    if kind == "date":
        return TODAY.isoformat()
    if kind == "date-time":
        return datetime.datetime.now(datetime.UTC).isoformat()
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {
            k: _example(k, v, world)
            for k, v in schema.get("properties", {}).items()
            if k in schema.get("required", [])
        }
    return "Synthetic text"


def _body_schema(operation):
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _deref(content["application/json"]["schema"])


@pytest.mark.parametrize(("route", "method", "operation"), _OPERATIONS)
def test_api_operation_survives_bad_input(world, db, route, method, operation):
    op = SCHEMA["paths"][route][method]
    client = world["client_for"](world["fuzzer"])
    _, params = matrix.API[operation]
    path_values = matrix._resolve(params, world["objects"])
    body_schema = _body_schema(op)
    base = {}
    if body_schema is not None:
        base = {
            k: _example(k, v, world)
            for k, v in body_schema.get("properties", {}).items()
            if k in body_schema.get("required", [])
        }
    query = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
    groups = []  # one list of (label, url, body) per parameter or field
    for p in op.get("parameters", []):
        if p["in"] == "path" and _kind(p["schema"]) == "integer":
            groups.append(
                [
                    (f"path {p['name']}={v}", route.format(**{**path_values, p["name"]: v}), base)
                    for v in PATH_IDS
                ]
            )
    url = route.format(**path_values)
    for name, p in query.items():
        group = []
        for value in _pick(_kind(p["schema"]), operation + name):
            if isinstance(value, list | dict) or value is None:
                continue
            qs = urlencode({name: _form_value(value)}, encoding="utf-8", errors="surrogatepass")
            group.append((f"query {name}={value!r:.40}", f"{url}?{qs}", base))
        groups.append(group)
    if body_schema is not None:
        for name, prop in body_schema.get("properties", {}).items():
            groups.append(
                [
                    (f"body {name}={value!r:.40}", url, {**base, name: value})
                    for value in _pick(_kind(prop), operation + name)
                ]
            )
        groups.append(
            [
                ("body not an object", url, Raw("[1E+999999999]")),
                ("body malformed", url, Raw('{"a": ')),
            ]
        )
    problems, writes = [], []
    for label, target, body in _interleave(groups):
        text = (
            None if method == "get" else (str(body) if isinstance(body, Raw) else _json_body(body))
        )
        response = _request(client, method, target, text, "application/json")
        problem = _problem(response, target)
        if problem:
            problems.append(f"{method.upper()} {target[:120]} [{label}] -> {problem}")
        elif method != "get" and response.status_code < 300:
            writes.append(label)
    app = operation.removeprefix("ketaflow_").split("_api_")[0]
    problems += _still_renders(client, world, app, writes)
    _log(problems)
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------------------
# Web forms
# ---------------------------------------------------------------------------

FORM_ROUTES = sorted(name for name in matrix.WEB if name not in NOT_FUZZED)


@pytest.mark.parametrize("name", FORM_ROUTES)
def test_form_survives_bad_input(world, db, name):
    method, need, params = matrix.WEB[name]
    public = need == matrix.PUBLIC
    client = Client() if public else world["client_for"](world["fuzzer"])
    kwargs = matrix._resolve(params, world["objects"])
    url = reverse(name, kwargs=kwargs)
    forms = world["forms"].get(name, [])
    if not forms and method == "post":
        body = matrix.BODIES.get(name, {})
        forms = [{"method": "post", "fields": dict(body), "types": {}}]
    groups = []  # one list of (label, http method, url, form data) per URL id or field
    for key, value in kwargs.items():
        if isinstance(value, int):
            groups.append(
                [
                    (f"url {key}={bad}", method, reverse(name, kwargs={**kwargs, key: bad}), {})
                    for bad in PATH_IDS[:2]
                ]
            )
    for form in forms:
        verb = "post" if form["method"] == "post" else "get"
        for field, kind in {**{f: "text" for f in form["fields"]}, **form["types"]}.items():
            if kind == "hidden":
                continue
            groups.append(
                [
                    (f"{field}={value!r:.40}", verb, url, {**form["fields"], field: value})
                    for value in _pick(_kind_of_input(kind), name + field)
                ]
            )
    problems, writes = [], []
    for label, verb, target, data in _interleave(groups):
        if verb == "get":
            qs = _form_body(data)
            response = _request(client, "get", f"{target}?{qs}" if qs else target)
        else:
            response = _request(
                client, "post", target, _form_body(data), "application/x-www-form-urlencoded"
            )
        problem = _problem(response, target)
        if problem:
            problems.append(f"{verb.upper()} {target} [{label}] -> {problem}")
        elif verb == "post" and response.status_code in (200, 302):
            writes.append(label)
    staff_client = world["client_for"](world["fuzzer"]) if public else client
    problems += _still_renders(staff_client, world, name.split(":")[0], writes)
    _log(problems)
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------------------
# Oversized bodies: once per route family
# ---------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def _families():
    api_ops, web_routes = {}, {}
    for route, method, operation in _OPERATIONS:
        if method in ("post", "put", "patch"):
            api_ops.setdefault(operation.removeprefix("ketaflow_").split("_api_")[0], route)
    for name, (method, need, _) in sorted(matrix.WEB.items()):
        if method == "post" and need != matrix.PUBLIC:
            web_routes.setdefault(name.split(":")[0], name)
    return [("api", k, v) for k, v in sorted(api_ops.items())] + [
        ("web", k, v) for k, v in sorted(web_routes.items())
    ]


@pytest.mark.parametrize(("surface", "family", "target"), _families())
def test_ten_megabyte_body_is_refused(world, db, surface, family, target):
    client = world["client_for"](world["fuzzer"])
    if surface == "api":
        params = next(matrix.API[op][1] for r, _, op in _OPERATIONS if r == target)
        url = target.format(**matrix._resolve(params, world["objects"]))
        body = json.dumps({"text": "x" * TEN_MB})
        response = _request(client, "post", url, body, "application/json")
        assert response.status_code == 413, (url, response.status_code, response.content[:200])
        assert json.loads(response.content)["detail"]
    else:
        _, _, params = matrix.WEB[target]
        url = reverse(target, kwargs=matrix._resolve(params, world["objects"]))
        body = urlencode({"reason": "x" * TEN_MB})
        response = _request(client, "post", url, body, "application/x-www-form-urlencoded")
        assert response.status_code == 413, (url, response.status_code, response.content[:200])


def test_the_gate_reaches_the_forms(world):
    """The crawl must find the forms (a template change must not silently empty the gate)."""
    assert len(world["forms"]) >= 20, sorted(world["forms"])
    assert {"treatment:vitals", "plans:create", "intake:public_request"} <= set(world["forms"])


# ---------------------------------------------------------------------------
# The reproductions of issue 16 (findings 5 and 7), one by one
# ---------------------------------------------------------------------------

treatment_matrix = _load("_bad_input_treatment_matrix", HERE.parent / "treatment/access_matrix.py")


@pytest.fixture
def small_world(clinic, staff, make_patient, patient):
    return {"clinic": clinic, "staff": staff, "make_patient": make_patient, "patient": patient}


def _field_error(response, field):
    assert response.status_code == 422, (response.status_code, response.content[:300])
    body = response.json()
    named = [e.get("field") for e in body.get("errors", [])] or [
        e.get("loc", [None])[-1] for e in body.get("detail", []) if isinstance(e, dict)
    ]
    assert field in named, body


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1999-12-31"])
def test_a_vital_sign_at_year_1_is_refused_and_the_session_page_keeps_working(
    small_world, client_for, at
):
    s = treatment_matrix._session(small_world)
    client = client_for(small_world["staff"]["nurse"])
    response = client.post(
        f"/api/v1/treatment/sessions/{s.pk}/vitals",
        {"at": at, "systolic": 120, "diastolic": 80},
        content_type="application/json",
    )
    _field_error(response, "at")
    assert client.get(f"/treatment/sessions/{s.pk}/").status_code == 200


def test_a_vital_sign_before_the_visit_is_refused_one_during_it_accepted(small_world, client_for):
    import datetime as dt

    s = treatment_matrix._session(small_world)
    client = client_for(small_world["staff"]["nurse"])
    url = f"/api/v1/treatment/sessions/{s.pk}/vitals"
    early = (s.opened_at - dt.timedelta(days=2)).isoformat()
    _field_error(client.post(url, {"at": early, "spo2": 97}, content_type="application/json"), "at")
    ok = client.post(
        url, {"at": s.opened_at.isoformat(), "spo2": 97}, content_type="application/json"
    )
    assert ok.status_code == 201, ok.content


@pytest.mark.parametrize("start_date", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_plans_refuse_start_dates_outside_the_planning_window(
    clinic, staff, patient, client_for, start_date
):
    client = client_for(staff["prescriber"])
    body = {
        "patient_id": patient.pk,
        "protocol": "iv-ketamine-clinic-6",
        "prescriber": staff["prescriber"].pk,
        "weight_kg": "80",
        "start_date": start_date,
        "goals": "Synthetic",
    }
    response = client.post("/api/v1/plans/plans", body, content_type="application/json")
    _field_error(response, "start_date")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dose_value", "1E+999999999"),
        ("dose_value", "12345678901234567890"),
        ("weight_kg", "1E+999999999"),
        ("minutes", "1e-22"),
        ("minutes", "0.5"),
        ("dose_value", "NaN"),
    ],
)
def test_dose_api_refuses_huge_tiny_and_non_finite_numbers(clinic, staff, client_for, field, value):
    body = {"route": "iv-ketamine", "dose_value": "0.5", "weight_kg": "80", "minutes": "40"}
    response = client_for(staff["prescriber"]).post(
        "/api/v1/plans/dose", {**body, field: value}, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert field in response.content.decode()


def test_dose_calculator_page_refuses_minutes_1e_minus_22(clinic, staff, client_for):
    page = client_for(staff["prescriber"]).post(
        "/plans/dose/",
        {"route": "iv-ketamine", "dose_value": "0.5", "weight_kg": "80", "minutes": "1e-22"},
    )
    text = page.content.decode()
    assert page.status_code == 200 and "mg/min" not in text.split("<main")[-1].split("Result")[-1]
    assert "decimal places" in text


def test_ketaflow_dose_cli_refuses_minutes_1e_minus_22(capsys):
    from ketaflow.clinical import dosing

    code = dosing.main(
        ["--route", "iv-ketamine", "--weight-kg", "70", "--mg-per-kg", "0.5", "--minutes", "1e-22"]
    )
    assert code == 2 and "minutes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("food_hours", "1E+999999999"),
        ("food_hours", "NaN"),
        ("liquid_minutes", "12345678901234567890"),
        ("weight_kg", "1E+999999999"),
        ("weight_kg", "-Infinity"),
    ],
)
def test_pre_assessment_refuses_huge_and_non_finite_numbers(small_world, client_for, field, value):
    s = treatment_matrix._session(small_world)
    body = {
        "food_hours": "3",
        "liquid_minutes": "40",
        "ride_home": True,
        "pregnancy": "not applicable",
        "weight_kg": "80",
    }
    response = client_for(small_world["staff"]["nurse"]).post(
        f"/api/v1/treatment/sessions/{s.pk}/pre-assessment",
        {**body, field: value},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert field in response.content.decode()


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_booking_at_year_1_or_9999_is_a_field_error(clinic, staff, patient, client_for, start):
    from ketaflow.scheduling.defaults import ensure_types

    body = {
        "patient_id": patient.pk,
        "type_id": ensure_types(clinic)["consultation"].pk,
        "location_id": clinic.locations.get(name="North").pk,
        "start": start,
    }
    response = client_for(staff["front_desk"]).post(
        "/api/v1/scheduling/appointments", body, content_type="application/json"
    )
    _field_error(response, "start")


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_calendar_and_free_slot_queries_refuse_far_dates(clinic, staff, patient, client_for, day):
    from ketaflow.scheduling.defaults import ensure_types

    client = client_for(staff["front_desk"])
    listing = client.get(f"/api/v1/scheduling/appointments?day={day}")
    _field_error(listing, "day")
    type_id = ensure_types(clinic)["consultation"].pk
    location_id = clinic.locations.get(name="North").pk
    slots = client.get(
        f"/api/v1/scheduling/free-slots?patient_id={patient.pk}&type_id={type_id}"
        f"&location_id={location_id}&day={day}"
    )
    _field_error(slots, "day")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/patients?offset=100000000000000000000",
        "/api/v1/plans/plans?offset=100000000000000000000",
        "/api/v1/plans/plans?patient_id=100000000000000000000",
        "/api/v1/scheduling/appointments?staff_id=100000000000000000000",
        "/api/v1/patients/100000000000000000000",
        "/api/v1/audit/events?patient=9223372036854775808",
        "/api/v1/audit/events?page=100000000000000000000",
    ],
)
def test_ids_and_offsets_beyond_64_bits_are_4xx(clinic, staff, client_for, url):
    response = client_for(staff["owner"]).get(url)
    assert response.status_code in (400, 404, 422), (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")


def test_ids_beyond_64_bits_in_page_urls_are_404(clinic, staff, client_for):
    client = client_for(staff["owner"])
    assert client.get("/patients/100000000000000000000/").status_code == 404


@pytest.mark.parametrize("bad", ["Ri\ud800ley", "Ri\x00ley"])
def test_a_lone_surrogate_or_nul_in_a_name_is_a_field_error(clinic, staff, client_for, bad):
    body = {
        "legal_given_name": bad,
        "legal_family_name": "Synth",
        "date_of_birth": "1980-01-01",
        "sex_assigned_at_birth": "female",
    }
    response = client_for(staff["front_desk"]).post(
        "/api/v1/patients", _json_body(body), content_type="application/json"
    )
    _field_error(response, "legal_given_name")


def test_a_ten_megabyte_body_is_413_json(clinic, staff, client_for):
    body = json.dumps({"legal_given_name": "x" * TEN_MB})
    response = client_for(staff["front_desk"]).post(
        "/api/v1/patients", body, content_type="application/json"
    )
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_the_body_limit_is_the_one_django_enforces():
    from django.conf import settings

    from ketaflow.web import bounds

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == bounds.MAX_BODY_BYTES


def test_eligibility_api_refuses_age_0(clinic, staff, client_for):
    case = {
        "route": "iv-ketamine",
        "age": 0,
        "antidepressant_trials": [],
        "conditions": [],
        "medication_classes": [],
    }
    response = client_for(staff["prescriber"]).post(
        "/api/v1/eligibility/check", case, content_type="application/json"
    )
    _field_error(response, "age")
